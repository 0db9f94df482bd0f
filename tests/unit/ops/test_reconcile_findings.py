from dataclasses import dataclass

from mediaflow.ops.reconcile import check_object, stuck


@dataclass
class Row:
    media_id: str = "m"
    status: str = "stored"
    status_at: int = 0
    sha256: str | None = "aa" * 32
    object_key: str | None = "k"
    client_id: str | None = "2"
    bucket: str | None = "b"


def test_a_stored_media_without_its_object_is_missing():
    assert check_object(Row(), None).problem == "missing"


def test_an_object_whose_sha256_metadata_differs_is_a_mismatch():
    finding = check_object(Row(), {"Metadata": {"sha256": "bb" * 32}})
    assert finding.problem == "sha256_mismatch"


def test_an_object_with_the_recorded_sha256_is_fine():
    assert check_object(Row(), {"Metadata": {"sha256": "aa" * 32}}) is None


def test_only_non_terminal_media_older_than_the_threshold_are_stuck():
    rows = [
        Row("old", "retrying", status_at=0),
        Row("new", "retrying", status_at=9_000),
        Row("done", "stored", status_at=0),
        Row("gave-up", "dead_lettered", status_at=0),
    ]
    assert [f.media_id for f in stuck(rows, now_ms=10_000, older_than_s=5)] == ["old"]
