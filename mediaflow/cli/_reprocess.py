"""``mediaflow reprocess`` and ``mediaflow reconcile``: ask for downloads again."""

import argparse
from typing import Any

from mediaflow.cli._args import json_flag, positive_int, time_arg
from mediaflow.codec import AvroCodec
from mediaflow.config import Settings
from mediaflow.errors import UsageError
from mediaflow.events import utcnow
from mediaflow.kafka.headers import millis
from mediaflow.kafka.topics import load_layout
from mediaflow.ops import reconcile, reprocess
from mediaflow.ops._output import table, to_json
from mediaflow.progress import Progress
from mediaflow.storage.projection import MediaQuery, open_store
from mediaflow.storage.s3 import s3_client


def register(subparsers: Any) -> None:
    """Add the commands to the CLI."""
    _register_reprocess(subparsers)
    _register_reconcile(subparsers)


def _register_reprocess(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reprocess", help="re-emit download requests for media chosen from the projection"
    )
    parser.add_argument("--client", help="client id")
    parser.add_argument("--instance", help="provider instance id")
    parser.add_argument("--status", help="detected, retrying, stored, dead_lettered, ...")
    parser.add_argument("--type", dest="media_type", help="media type (image, audio...)")
    parser.add_argument("--since", type=time_arg, help="first seen at or after (ISO or epoch ms)")
    parser.add_argument("--until", type=time_arg, help="first seen before (ISO or epoch ms)")
    parser.add_argument("--media-id", action="append", default=[], help="this media (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many media")
    parser.add_argument("--dry-run", action="store_true", help="show what would be re-requested")
    json_flag(parser)
    parser.set_defaults(handler=reprocess_command)


def request_again(
    settings: Settings, media_ids: list[str], *, dry_run: bool
) -> tuple[list[str], list[str]]:
    """The reprocess path: find each media's original request and publish it again.

    Returns:
        ``(re-requested, not found on the request topic)`` media ids.
    """
    layout = load_layout(settings.kafka)
    found = reprocess.find_requests(
        settings, layout, AvroCodec(), media_ids, progress=Progress("scanned requests")
    )
    if not dry_run:
        reprocess.reemit(settings, layout, found.values())
    return sorted(found), sorted(set(media_ids) - set(found))


def _ms(moment: Any) -> int | None:
    return None if moment is None else millis(moment)


def reprocess_command(args: argparse.Namespace, settings: Settings) -> int:
    """Re-request the selected media; exit 1 when some had no request left on the topic."""
    media_ids = list(args.media_id)
    if not media_ids:
        query = MediaQuery(
            client_id=args.client,
            instance_id=args.instance,
            status=args.status,
            media_type=args.media_type,
            since_ms=_ms(args.since),
            until_ms=_ms(args.until),
            limit=200,
        )
        store = open_store(settings.projection_db_url)
        try:
            media_ids = [r.media_id for r in reprocess.select_media(store, query, limit=args.limit)]
        finally:
            store.close()
    sent, missing = request_again(settings, media_ids, dry_run=args.dry_run)
    if args.json:
        print(to_json({"dry_run": args.dry_run, "requested": sent, "not_found": missing}))
    else:
        verb = "would re-request" if args.dry_run else "re-requested"
        print(f"{verb} {len(sent)} media: {', '.join(sent) or '-'}")
        if missing:
            print(
                f"no download request left on the topic for {len(missing)} media "
                f"(retention passed?): {', '.join(missing)}"
            )
    return 1 if missing else 0


def _register_reconcile(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reconcile", help="find stored media missing from the bucket, and stuck media"
    )
    parser.add_argument(
        "--older-than",
        type=float,
        default=3600,
        metavar="S",
        help="non-terminal for longer than S seconds counts as stuck",
    )
    parser.add_argument("--fix", action="store_true", help="re-request the download of findings")
    parser.add_argument(
        "--verify-bytes",
        action="store_true",
        help="also read every stored object and check its sha256 and size (slow: reads it all)",
    )
    parser.add_argument(
        "--sample",
        type=positive_int,
        metavar="N",
        help="with --verify-bytes: read only N stored objects chosen at random",
    )
    json_flag(parser)
    parser.set_defaults(handler=reconcile_command)


FINDING_COLUMNS = ("media_id", "problem", "status", "client_id", "detail")


def reconcile_command(args: argparse.Namespace, settings: Settings) -> int:
    """Report findings (and fix them); exit 1 when something is left unfixed."""
    store = open_store(settings.projection_db_url)
    try:
        rows = list(store.rows())
    finally:
        store.close()
    if args.sample and not args.verify_bytes:
        raise UsageError("--sample goes with --verify-bytes")
    stored = [r for r in rows if r.status == "stored" and r.object_key]
    s3 = s3_client(settings.s3)
    findings = reconcile.stored_problems(
        stored, s3, settings.s3.bucket, progress=Progress("checked objects", total=len(stored))
    )
    verified = reconcile.Verification()
    if args.verify_bytes:
        chosen = reconcile.choose(stored, args.sample)
        progress = Progress("hashed", total=sum(r.size or 0 for r in chosen), unit="B")
        verified = reconcile.verify_bytes(chosen, s3, settings.s3.bucket, progress=progress)
        findings += verified.findings
    findings += reconcile.stuck(rows, now_ms=_ms(utcnow()) or 0, older_than_s=args.older_than)
    fixed: list[str] = []
    missing: list[str] = []
    if args.fix and findings:
        fixed, missing = request_again(settings, [f.media_id for f in findings], dry_run=False)
    if args.json:
        print(
            to_json(
                {
                    "checked": len(rows),
                    "verified_objects": verified.objects,
                    "verified_bytes": verified.bytes,
                    "findings": findings,
                    "fixed": fixed,
                    "not_fixable": missing,
                }
            )
        )
    else:
        print(table([_row(f) for f in findings], FINDING_COLUMNS) if findings else "no findings")
        print(
            f"\nchecked {len(rows)} media ({len(stored)} stored objects): "
            f"{len(findings)} finding(s)" + (f", {len(fixed)} re-requested" if args.fix else "")
        )
        if args.verify_bytes:
            print(f"read and hashed {verified.objects} object(s), {verified.bytes:,} bytes")
        if missing:
            print(f"no download request left for: {', '.join(missing)}")
    unfixed = len(findings) - len(fixed)
    return 1 if unfixed else 0


def _row(finding: reconcile.Finding) -> dict[str, Any]:
    return {k: getattr(finding, k) for k in FINDING_COLUMNS}
