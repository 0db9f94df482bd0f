"""CPU seconds of a system's processes, sampled from /proc while they run (and die).

A process SIGKILLed mid-run takes its CPU time with it, and a process's
``cutime`` only counts children it reaped, so the meter reads every matching
process's own ``utime + stime`` once a second and keeps the last reading of
each: at most a second of a killed process's work goes uncounted. A process
already running when the meter starts (a broker) counts from then on only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

Matcher = Callable[[int, list[str]], bool]
"""(pid, argv) -> whether the process belongs to a group."""

_TICKS = os.sysconf("SC_CLK_TCK")


def own_cpu_s(stat: str) -> tuple[int, float]:
    """(start time in ticks, utime + stime in seconds) of one ``/proc/<pid>/stat`` line."""
    fields = stat.rsplit(")", 1)[1].split()
    # After the name: state is field 3 of proc(5); utime 14, stime 15, starttime 22.
    return int(fields[19]), (int(fields[11]) + int(fields[12])) / _TICKS


def pid_from(path: Path) -> int | None:
    """The pid a pid file holds, or ``None``."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class CpuMeter:
    """Samples the CPU time of process groups (``{"workers": matcher, ...}``) in a thread."""

    def __init__(self, groups: Mapping[str, Matcher], interval_s: float = 1.0) -> None:
        """Prepare (not start) the sampling."""
        self._groups = dict(groups)
        self._interval_s = interval_s
        self._seen: dict[tuple[int, int], tuple[str, float]] = {}
        self._before: dict[tuple[int, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cpu-meter", daemon=True)

    def __enter__(self) -> CpuMeter:
        self.sample()
        self._before = {k: seconds for k, (_group, seconds) in self._seen.items()}
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def totals(self) -> dict[str, float]:
        """CPU seconds per group so far."""
        out = dict.fromkeys(self._groups, 0.0)
        for key, (group, seconds) in self._seen.items():
            out[group] += seconds - self._before.get(key, 0.0)
        return out

    def sample(self) -> None:
        """Read every process once."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                start, seconds = own_cpu_s((entry / "stat").read_text())
            except OSError:
                continue  # it ended between two reads
            pid = int(entry.name)
            for group, matches in self._groups.items():
                if matches(pid, argv):
                    self._seen[(pid, start)] = (group, seconds)
                    break

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()


__all__ = ["CpuMeter", "Matcher", "own_cpu_s", "pid_from"]
