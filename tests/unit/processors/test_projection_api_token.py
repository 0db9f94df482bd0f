"""The API refuses a token anyone could send: empty, or the local default off loopback."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediaflow import logging as mflog
from mediaflow.cli import main as cli_main
from mediaflow.config import LOCAL_API_TOKEN, Secret
from mediaflow.errors import EXIT_CONFIG, ConfigError
from mediaflow.processors.projection.api import check_token, create_app
from mediaflow.storage.projection import open_store


@pytest.fixture
def cli() -> Iterator[None]:
    """The CLI logs to the test's captured stderr; point logging back at the real one after."""
    yield
    mflog.configure(fmt="json", level="warning", stream=sys.__stderr__)


class NoS3:
    def generate_presigned_url(self, *_args: object, **_kwargs: object) -> str:
        raise AssertionError("no presigning expected here")


def test_an_empty_token_is_refused_when_the_app_is_built(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'api.db'}")
    with pytest.raises(ConfigError, match="MEDIAFLOW_API_TOKEN"):
        create_app(store=store, token=Secret(""), s3=NoS3())
    store.close()


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"MEDIAFLOW_API_TOKEN": ""}, "MEDIAFLOW_API_TOKEN is empty"),
        ({"MEDIAFLOW_API_TOKEN": "   "}, "MEDIAFLOW_API_TOKEN is empty"),
        ({"MEDIAFLOW_API_HOST": "0.0.0.0"}, "well-known local default"),
        ({"MEDIAFLOW_API_HOST": "::"}, "well-known local default"),
        ({"MEDIAFLOW_API_HOST": "10.1.2.3"}, "well-known local default"),
        ({"MEDIAFLOW_API_HOST": "api.internal"}, "well-known local default"),
    ],
)
def test_the_api_refuses_to_start_with_a_token_anyone_knows(
    cli: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    says: str,
) -> None:
    for name in [n for n in os.environ if n.startswith("MEDIAFLOW_")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    # A store of no known kind: had the token passed, the command would fail another way.
    monkeypatch.setenv("MEDIAFLOW_PROJECTION_DB_URL", "nowhere://")
    assert cli_main(["serve", "api"]) == EXIT_CONFIG
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_the_local_default_token_is_accepted_on_loopback(host: str) -> None:
    check_token(Secret(LOCAL_API_TOKEN), host)


def test_a_strong_token_is_accepted_on_any_address() -> None:
    check_token(Secret("f3c1d9a0b7e24c6f8a5d2e1b0c9f7a6e"), "0.0.0.0")
