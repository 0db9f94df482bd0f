"""``mediaflow simulate``: serve and send agree on the media from their shared arguments."""

from __future__ import annotations

import argparse

from mediaflow.cli import build_parser
from mediaflow.cli._simulate import build_batch


def test_serve_and_send_build_the_same_media_from_the_same_seed():
    args = argparse.Namespace(seed=4, count=40, max_size=3_000)
    served, _ = build_batch(args, "", "")
    _, batch = build_batch(args, "http://cdn", "http://files")

    sent = {m.direct_path: m.file_enc_sha256 for hook in batch for m in hook.media}
    assert sent
    assert all(served.by_path(path).file_enc_sha256 == digest for path, digest in sent.items())


def test_simulate_commands_are_registered():
    args = build_parser().parse_args(["simulate", "serve", "--error-rate", "0.2"])

    assert (args.action, args.error_rate, args.wapi_port) == ("serve", 0.2, 8090)
