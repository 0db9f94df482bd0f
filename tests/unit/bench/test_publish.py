"""Publishing the README's Performance section from a results file."""

from pathlib import Path

import pytest

from bench.publish import END, START, publish

REPORT = {
    "mode": "full",
    "finished_at": "2026-12-06T00:10:00+00:00",
    "machine": {"cores": 2},
    "table": [
        {
            "measure": "projection rebuild / consume-only",
            "value": "0.61",
            "target": ">= 0.5x",
            "verdict": "pass",
        },
        {
            "measure": "e2e latency p99 (ms)",
            "value": "-",
            "target": "reported",
            "verdict": "skipped",
        },
    ],
    "results": {
        "capacity": {
            "status": "ok",
            "step_s": 20.0,
            "knee_p99_s": 2.0,
            "knees": {
                "small_x1": {
                    "rate_offered": 27.0,
                    "stored_per_s": 26.5,
                    "latency_ms": {"p99": 1500},
                    "cpu_share": {"downloader": 0.5, "webhooks": 0.3, "api": 0.0},
                },
                "small_x2": None,
            },
        }
    },
}


def readme(tmp_path: Path, middle: str = "old table") -> Path:
    path = tmp_path / "README.md"
    path.write_text(f"# title\n\n## Performance\n\n{START}\n{middle}\n{END}\n\n## Next\nkept\n")
    return path


def test_the_section_between_the_markers_is_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    path = readme(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "capacity.png").write_bytes(b"png")
    publish(REPORT, readme=path, images=tmp_path / "img", results=tmp_path / "results")
    text = path.read_text()
    assert "old table" not in text
    assert "| projection rebuild / consume-only | 0.61 | >= 0.5x | pass |" in text
    assert "| small media, 1 copy of each stage | 27 | 26.5 | 1500 | downloader 50%, " in text
    assert "| small media, 2 detectors + 2 downloaders | below the first step |" in text
    assert "e2e latency" not in text  # skipped by this run: not shown as a result
    assert "![capacity](docs/img/capacity.png)" in text
    assert (tmp_path / "img" / "capacity.png").read_bytes() == b"png"
    assert text.startswith("# title\n") and text.endswith("## Next\nkept\n")


def test_publishing_twice_gives_the_same_readme(tmp_path: Path) -> None:
    path = readme(tmp_path)
    kwargs = {"readme": path, "images": tmp_path / "img", "results": tmp_path}
    publish(REPORT, **kwargs)
    once = path.read_text()
    publish(REPORT, **kwargs)
    assert path.read_text() == once


def test_a_readme_without_the_markers_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text("# no section\n")
    with pytest.raises(ValueError, match="no '<!-- performance:start"):
        publish(REPORT, readme=path, images=tmp_path / "img", results=tmp_path)
    assert path.read_text() == "# no section\n"


def test_the_side_by_side_table_against_celery_is_published_when_it_ran(tmp_path: Path) -> None:
    path = readme(tmp_path)
    table = "### Side by side\n\n| measure | mediaflow | Celery + Redis |"
    report = {**REPORT, "results": {"celery": {"status": "ok", "markdown": table}}}
    publish(report, readme=path, images=tmp_path / "img", results=tmp_path)
    assert table in path.read_text()
    publish(REPORT, readme=path, images=tmp_path / "img", results=tmp_path)
    assert "Side by side" not in path.read_text()
