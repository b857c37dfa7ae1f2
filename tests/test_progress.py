"""Progress: a bar on a terminal, a few log lines anywhere else."""
from __future__ import annotations

import io
import logging

import pytest

from genrelab import progress
from genrelab.progress import LogProgress, progress_bar


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.time, "monotonic", c)
    return c


def test_off_a_terminal_it_is_a_logger_not_a_bar(monkeypatch):
    monkeypatch.setattr(progress, "on_terminal", lambda stream=None: False)
    assert isinstance(progress_bar(range(3), desc="x"), LogProgress)
    assert not progress.on_terminal(io.StringIO())


def test_a_long_loop_logs_about_ten_lines_and_a_closing_one(clock, caplog):
    caplog.set_level(logging.INFO, logger="genrelab.progress")
    for _ in LogProgress(range(1000), desc="features", unit="track"):
        clock.t += 0.5                      # 500 s in all
    lines = [r.getMessage() for r in caplog.records]
    assert 8 <= len(lines) <= 12, lines
    assert lines[0].startswith("features: ") and "tracks (" in lines[0] and "s left" in lines[0]
    assert lines[-1] == "features: 1000/1000 tracks (100%) done in 500.0 s"


def test_a_short_loop_logs_only_its_closing_line_and_inner_loops_nothing(clock, caplog):
    caplog.set_level(logging.INFO, logger="genrelab.progress")
    for _ in LogProgress(range(50), desc="synth", unit="track"):
        clock.t += 0.1
    for _ in LogProgress(range(50), desc="epoch", unit="batch", leave=False):
        clock.t += 0.1
    assert [r.getMessage() for r in caplog.records] == ["synth: 50/50 tracks (100%) done in 5.0 s"]


def test_a_slow_loop_without_total_still_reports_every_minute(clock, caplog):
    caplog.set_level(logging.INFO, logger="genrelab.progress")
    bar = LogProgress(desc="download", unit="B", unit_scale=True)
    for _ in range(10):
        clock.t += 30
        bar.update(2_500_000)
    bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 5 + 1 and lines[-1].startswith("download: 25.0 MB done")


def test_disabled_reports_nothing(clock, caplog):
    caplog.set_level(logging.INFO, logger="genrelab.progress")
    with progress_bar(total=10, desc="x", disable=True) as bar:
        for _ in range(10):
            clock.t += 100
            bar.update()
    assert caplog.records == []
