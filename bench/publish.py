"""The README's "Performance" section, written from the latest benchmark results.

``python -m bench --publish`` runs the benchmarks and then this;
``python -m bench.publish`` publishes ``bench/results/latest.json`` as it is.
The section between the two markers in README.md is replaced (nothing else in
the file is touched): the table of every measure with its value, target and
verdict, the capacity knees, the side-by-side table against a Celery + Redis
worker, the machine and the date; the plots are copied
to ``docs/img/``. Nobody edits those lines by hand.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mediaflow.config import REPO_ROOT

README = REPO_ROOT / "README.md"
IMAGES = REPO_ROOT / "docs" / "img"
RESULTS = REPO_ROOT / "bench" / "results"
START = "<!-- performance:start (python -m bench --publish writes this part) -->"
END = "<!-- performance:end -->"

CONFIGURATIONS = {
    "small_x1": "small media, 1 copy of each stage",
    "small_x2": "small media, 2 detectors + 2 downloaders",
    "realistic_x1": "realistic mix, 1 copy of each stage",
    "realistic_x2": "realistic mix, 2 detectors + 2 downloaders",
}


def section(report: Mapping[str, Any], plots: list[str]) -> str:
    """The markdown between the markers, from a ``latest.json`` report."""
    machine = report.get("machine", {})
    lines = [
        START,
        "",
        f"Measured by `make bench` ({report.get('mode', 'full')} run, finished "
        f"{str(report.get('finished_at', '?'))[:16].replace('T', ' ')} UTC) on: "
        + ", ".join(f"{k} {v}" for k, v in machine.items())
        + ". Each ratio is against a baseline measured in the same run "
        "(`bench/README.md` says which).",
        "",
        "| measure | value | target | verdict |",
        "|---|---|---|---|",
    ]
    rows = report.get("table", [])
    lines += [
        f"| {r['measure']} | {r['value']} | {r['target']} | {r['verdict']} |"
        for r in rows
        if r["verdict"] != "skipped"
    ]
    if any(r["verdict"] == "skipped" for r in rows):
        lines += ["", "Measures this run skipped (`--only`, `--no-e2e`) are left out."]
    capacity = report.get("results", {}).get("capacity", {})
    if capacity.get("status") == "ok":
        lines += ["", *_knees(capacity)]
    side_by_side = report.get("results", {}).get("celery", {})
    if side_by_side.get("status") == "ok" and side_by_side.get("markdown"):
        lines += ["", side_by_side["markdown"]]
    lines += ["", *(f"![{Path(p).stem}](docs/img/{Path(p).name})" for p in plots), "", END]
    return "\n".join(lines)


def _knees(capacity: Mapping[str, Any]) -> list[str]:
    lines = [
        f"Capacity knee: the highest webhook rate offered at which every media of a "
        f"{capacity.get('step_s', '?')} s step was stored with accepted -> stored p99 "
        f"within {capacity.get('knee_p99_s', '?')} s and no growing lag "
        "(`python -m bench --only capacity`).",
        "",
        "| configuration | webhooks/s offered | media stored/s | p99 ms | CPU share by role |",
        "|---|---|---|---|---|",
    ]
    for name, step in capacity.get("knees", {}).items():
        label = CONFIGURATIONS.get(name, name)
        if step is None:
            lines.append(f"| {label} | below the first step | - | - | - |")
            continue
        shares = ", ".join(
            f"{role} {share:.0%}"
            for role, share in sorted(step["cpu_share"].items(), key=lambda kv: -kv[1])
            if share >= 0.01
        )
        lines.append(
            f"| {label} | {step['rate_offered']:g} | {step['stored_per_s']:g} | "
            f"{step['latency_ms']['p99']} | {shares} |"
        )
    return lines


def publish(
    report: Mapping[str, Any],
    *,
    readme: Path = README,
    images: Path = IMAGES,
    results: Path = RESULTS,
) -> Path:
    """Copy the plots to ``images`` and rewrite the Performance section of ``readme``.

    Raises:
        ValueError: ``readme`` lacks the markers (or has them out of order).
    """
    text = readme.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no '{START}' ... '{END}' section to replace")
    images.mkdir(parents=True, exist_ok=True)
    plots = []
    for png in sorted(results.glob("*.png")):
        shutil.copyfile(png, images / png.name)
        plots.append(png.name)
    readme.write_text(text[:start] + section(report, plots) + text[end + len(END) :])
    return readme


def main() -> int:
    """Publish ``bench/results/latest.json`` into README.md."""
    latest = RESULTS / "latest.json"
    if not latest.exists():
        print(f"no {latest}: run `make bench` first", file=sys.stderr)
        return 1
    print(f"written: {publish(json.loads(latest.read_text()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
