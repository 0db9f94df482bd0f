"""Argument types shared by the CLI commands: a bad value is refused with a reason."""

import argparse
from collections.abc import Callable

import pytest

from mediaflow.cli import build_parser, main
from mediaflow.cli._args import positive_int, positive_seconds


def test_a_positive_count_is_read() -> None:
    assert positive_int("3") == 3


def test_a_number_of_seconds_is_read() -> None:
    assert positive_seconds("2.5") == 2.5


@pytest.mark.parametrize(
    ("parse", "text", "reason"),
    [
        (positive_int, "0", "at least 1"),
        (positive_int, "x", "not a whole number"),
        (positive_seconds, "0", "above 0"),
        (positive_seconds, "-1", "above 0"),
        (positive_seconds, "nan", "above 0"),
        (positive_seconds, "inf", "above 0"),
        (positive_seconds, "soon", "not a number of seconds"),
    ],
)
def test_a_value_out_of_range_or_garbage_is_refused_with_its_reason(
    parse: Callable[[str], object], text: str, reason: str
) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=reason):
        parse(text)


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


def test_run_refuses_a_negative_idle_exit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "detector", "--idle-exit", "-1"])
    assert "--idle-exit: '-1' must be a number of seconds above 0" in capsys.readouterr().err


@pytest.mark.parametrize("role", ["webhooks", "api", "all"])
def test_idle_exit_for_a_role_that_does_not_drain_is_refused_not_ignored(
    role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", role, "--idle-exit", "5"]) == 1
    assert capsys.readouterr().err == (
        "mediaflow run: --idle-exit applies to the processor roles only "
        "(detector, downloader, projection, notifier); the others serve until stopped\n"
    )
