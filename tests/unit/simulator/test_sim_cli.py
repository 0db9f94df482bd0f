"""``python -m simulator serve|send``: the simulator's own command, outside the product."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from mediaflow.cli import build_parser as mediaflow_parser
from simulator.cli import build_batch, build_parser

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_serve_and_send_build_the_same_media_from_the_same_seed():
    args = argparse.Namespace(seed=4, count=40, max_size=3_000)
    served, _ = build_batch(args, "", "")
    _, batch = build_batch(args, "http://cdn", "http://files")

    sent = {m.direct_path: m.file_enc_sha256 for hook in batch for m in hook.media}
    assert sent
    assert all(served.by_path(path).file_enc_sha256 == digest for path, digest in sent.items())


def test_serve_and_send_take_their_options():
    serve = build_parser().parse_args(["serve", "--error-rate", "0.2"])
    send = build_parser().parse_args(["send", "--count", "40", "--rate", "5"])

    assert (serve.action, serve.error_rate, serve.wapi_port) == ("serve", 0.2, 8090)
    assert (send.action, send.count, send.rate) == ("send", 40, 5.0)


def test_the_simulator_runs_as_a_module_from_the_repository():
    shown = subprocess.run(
        [sys.executable, "-m", "simulator", "serve", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: python -m simulator serve")


def test_the_product_cli_no_longer_offers_the_simulator(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        mediaflow_parser().parse_args(["simulate", "serve"])
    assert "invalid choice: 'simulate'" in capsys.readouterr().err
