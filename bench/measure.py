"""Timing a child process (wall clock and its own peak RSS), and summarising repetitions."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class ChildFailed(RuntimeError):
    """A measured command exited non-zero; the message carries the end of its stderr."""


@dataclass(frozen=True)
class Sample:
    seconds: float
    max_rss: int  # bytes, this child only (wait4), not the max over all children
    stdout: str


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Sample:
    """Run a command to completion: wall time from spawn to reaping, and its peak RSS.

    ``os.wait4`` on the child's pid gives that child's own ``ru_maxrss``; the
    RUSAGE_CHILDREN figure would be the maximum over every child so far.
    Output goes to files, so a child that prints a lot never blocks on a pipe.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if child.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise ChildFailed(f"`{' '.join(argv)}` exited {child.returncode}:\n{tail}")
    return Sample(seconds, usage.ru_maxrss * 1024, stdout)


def run_timed_inside(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Sample:
    """Run a worker that times itself and prints ``{"seconds": ...}`` last."""
    sample = run(argv, env=env)
    seconds = json.loads(sample.stdout.strip().splitlines()[-1])["seconds"]
    return Sample(float(seconds), sample.max_rss, sample.stdout)


@dataclass
class Series:
    """Repetitions of one measurement."""

    label: str
    samples: list[Sample] = field(default_factory=list)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    @property
    def times(self) -> list[float]:
        return [s.seconds for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def low(self) -> float:
        return min(self.times)

    @property
    def high(self) -> float:
        return max(self.times)

    @property
    def rss_median(self) -> int:
        return int(statistics.median(s.max_rss for s in self.samples))

    @property
    def rss_high(self) -> int:
        return max(s.max_rss for s in self.samples)

    def __bool__(self) -> bool:
        return bool(self.samples)


def ratio(a: Series, b: Series) -> float:
    """Median over median: the comparison the tables show."""
    return a.median / b.median
