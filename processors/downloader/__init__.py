"""The downloader: fetch every media (W-API, the WhatsApp CDN, or a plain link) into S3."""

from mediaflow.backoff import Backoff
from mediaflow.processors.downloader.client import GuardedClient, guarded_session
from mediaflow.processors.downloader.fetchers import Fetcher, Source, fetch_paths, status_error
from mediaflow.processors.downloader.keys import content_type, extension, object_key
from mediaflow.processors.downloader.stage import STAGE, DownloaderStage, open_worker
from mediaflow.processors.downloader.streaming import size_limit, transfer
from mediaflow.url_guard import UrlPolicy

__all__ = [
    "Backoff",
    "DownloaderStage",
    "Fetcher",
    "GuardedClient",
    "STAGE",
    "Source",
    "UrlPolicy",
    "content_type",
    "extension",
    "fetch_paths",
    "guarded_session",
    "object_key",
    "open_worker",
    "size_limit",
    "status_error",
    "transfer",
]
