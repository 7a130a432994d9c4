"""Benchmark harness: each benchmark records bytes and events per run; the summary prints MB/s (10^6 bytes/s),
events/s and the ratios the issue targets are stated in, from **medians**.

``--quick`` (what ``make test`` uses) runs every benchmark once, to exercise the code; timings are reported,
never asserted.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field

import pytest


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true", help="run each benchmark once (CI smoke mode)")


@dataclass
class Figure:
    name: str
    nbytes: int
    nevents: int
    median_s: float = 0.0
    rounds: int = 0

    @property
    def mb_s(self) -> float:
        return self.nbytes / self.median_s / 1e6 if self.median_s else 0.0

    @property
    def events_s(self) -> float:
        return self.nevents / self.median_s if self.median_s else 0.0


@dataclass
class Results:
    quick: bool
    figures: dict[str, Figure] = field(default_factory=dict)
    ratios: list[tuple[str, str, str, str]] = field(default_factory=list)  # (label, num, den, target)
    notes: list[str] = field(default_factory=list)  # figures that are not throughput (latency, memory)


@pytest.fixture(scope="session")
def results(request) -> Results:
    res = Results(quick=request.config.getoption("--quick"))
    request.config._tillwire_bench = res
    return res


@pytest.fixture
def measure(benchmark, results):
    """``measure(name, fn, nbytes, nevents)``: time ``fn`` with pytest-benchmark and record the figure."""

    def run(name: str, fn, nbytes: int, nevents: int, rounds: int = 9):
        if results.quick:
            benchmark.pedantic(fn, rounds=1, iterations=1, warmup_rounds=0)
        else:
            benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
        fig = Figure(name, nbytes, nevents, benchmark.stats.stats.median, benchmark.stats.stats.rounds)
        results.figures[name] = fig
        benchmark.extra_info.update(mb_s=round(fig.mb_s, 2), events_s=round(fig.events_s))
        return fig

    return run


def machine_description() -> str:
    """CPU model and count, Python and OS: printed with every set of figures."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{model} x {os.cpu_count()} ({platform.machine()}), Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    res: Results | None = getattr(config, "_tillwire_bench", None)
    if not res or not (res.figures or res.notes):
        return
    tr = terminalreporter
    tr.section("tillwire throughput (medians" + (", --quick: 1 round, not a measurement)" if res.quick else ")"))
    tr.write_line(f"machine: {machine_description()}")
    tr.write_line(f"{'benchmark':44} {'MB/s':>10} {'events/s':>14} {'rounds':>7}")
    for fig in res.figures.values():
        unit = "  (messages/s)" if "iso8583" in fig.name else ""  # the ISO rows count messages, not events
        tr.write_line(f"{fig.name:44} {fig.mb_s:10.1f} {fig.events_s:14,.0f} {fig.rounds:7d}{unit}")
    for label, num, den, target in res.ratios:
        a, b = res.figures.get(num), res.figures.get(den)
        if a and b and b.mb_s:
            tr.write_line(f"{label:44} {a.mb_s / b.mb_s:10.2f}x  (target {target})")
    for note in res.notes:
        tr.write_line(note)
