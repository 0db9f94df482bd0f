"""Argument types shared by the CLI commands: a bad value is refused with a reason."""

import argparse

import pytest

from mediaflow.cli import build_parser, main
from mediaflow.cli._args import positive_int


def test_a_positive_count_is_read() -> None:
    assert positive_int("3") == 3


@pytest.mark.parametrize(("text", "reason"), [("0", "at least 1"), ("x", "not a whole number")])
def test_zero_or_garbage_is_refused_with_its_reason(text: str, reason: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=reason):
        positive_int(text)


def test_projection_rebuild_refuses_zero_workers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["projection", "rebuild", "--workers", "0"])
    assert "--workers: must be at least 1" in capsys.readouterr().err


def test_serve_refuses_zero_workers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "webhooks", "--workers", "0"])
    assert "--workers: must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["serve", "api"], ["run", "detector"], ["run", "all"]])
def test_workers_for_a_role_other_than_webhooks_is_refused_not_ignored(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--workers", "2"]) == 1
    assert capsys.readouterr().err == (
        f"mediaflow {argv[0]}: --workers applies to the webhooks role only "
        "(mediaflow serve webhooks --workers N); other roles scale by running more copies of them\n"
    )
