"""Progress of long loops: a tqdm bar on a terminal, a few log lines anywhere else.

A tqdm bar written to a file or a pipe (``make repro > log``, a queued DVC experiment, CI)
becomes one endless line of carriage returns. :func:`progress_bar` is the one helper every loop of
the project uses: on a terminal it is a tqdm bar; otherwise it logs a line to the
``genrelab.progress`` logger each time another tenth of the work is done (at most every
:data:`MIN_INTERVAL_S` seconds) or a minute has passed, and one closing line with the count and
the time taken. Loops shorter than :data:`QUIET_S` log only their closing line, and only when
``leave`` is true (inner loops such as epochs or batches pass ``leave=False``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, Self, TextIO

__all__ = ["LogProgress", "on_terminal", "progress_bar", "write_line"]

log = logging.getLogger("genrelab.progress")

STEP = 0.1
"""Fraction of the work between two log lines."""
MIN_INTERVAL_S = 5.0
"""Least seconds between two log lines."""
MAX_INTERVAL_S = 60.0
"""A line at least this often while work goes on."""
QUIET_S = 10.0
"""Loops that finish sooner log nothing but their closing line."""


def on_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (stderr by default) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _fmt_count(n: float, unit: str, unit_scale: bool) -> str:
    if unit_scale:
        for prefix in ("", "k", "M", "G", "T"):
            if abs(n) < 1000:
                return f"{n:.1f} {prefix}{unit}" if prefix else f"{n:.0f} {unit}"
            n /= 1000.0
        return f"{n:.1f} P{unit}"
    return f"{int(n)} {unit}"


class LogProgress:
    """The part of tqdm's interface the project uses, reporting through :mod:`logging`.

    Iterate over it, or call :meth:`update`; use it as a context manager or :meth:`close` it.
    """

    def __init__(self, iterable: Iterable | None = None, *, total: float | None = None, desc: str = "",
                 unit: str = "it", leave: bool = True, unit_scale: bool = False, disable: bool = False,
                 initial: float = 0, **_: Any) -> None:
        self.iterable = iterable
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except TypeError:
                total = None
        self.total, self.desc, self.unit, self.leave = total, desc, unit, leave
        self.unit_scale, self.disable = unit_scale, disable
        self.n: float = initial
        self.postfix: dict[str, Any] = {}
        self._t0 = self._last = time.monotonic()
        self._next = STEP
        self._closed = False

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("LogProgress without an iterable: call update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def _line(self) -> str:
        if self.unit_scale:
            done = _fmt_count(self.n, self.unit, True)
            return f"{self.desc}: {done} of {_fmt_count(self.total, self.unit, True)}" if self.total else \
                f"{self.desc}: {done}"
        unit = self.unit if self.unit.endswith("s") or (self.total or self.n) == 1 else f"{self.unit}s"
        extra = "".join(f", {v} {k}" for k, v in self.postfix.items())   # e.g. ", 2 failed"
        if self.total:
            return f"{self.desc}: {int(self.n)}/{int(self.total)} {unit} ({100 * self.n / self.total:.0f}%){extra}"
        return f"{self.desc}: {int(self.n)} {unit}{extra}"

    def update(self, n: float = 1) -> None:
        """Count ``n`` more units done; log a line when another step is reached."""
        self.n += n
        if self.disable:
            return
        now = time.monotonic()
        if now - self._t0 < QUIET_S or (self.total and self.n >= self.total):
            return   # a short loop, or the end: the closing line says it
        stepped = bool(self.total) and self.n / self.total >= self._next and now - self._last >= MIN_INTERVAL_S
        if stepped or now - self._last >= MAX_INTERVAL_S:
            elapsed = now - self._t0
            eta = ""
            if self.total and self.n:
                eta = f", about {elapsed * (self.total - self.n) / self.n:.0f} s left"
            log.info("%s, %.0f s%s", self._line(), elapsed, eta)
            self._last = now
            if self.total:
                self._next = (int(self.n / self.total / STEP) + 1) * STEP

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        """Numbers shown after the count (``failed=2`` -> ``, 2 failed``), as tqdm's postfix."""
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def refresh(self) -> None:
        """Nothing to redraw."""

    def write(self, text: str, file: TextIO | None = None) -> None:
        print(text, file=file or sys.stdout)

    def close(self) -> None:
        """Log the closing line once (for ``leave=True`` loops)."""
        if self._closed:
            return
        self._closed = True
        if self.leave and not self.disable and (self.n or self.total):
            log.info("%s done in %.1f s", self._line(), time.monotonic() - self._t0)


def progress_bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str = "", unit: str = "it",
             disable: bool = False, leave: bool = True, **kwargs: Any):
    """A progress reporter: a tqdm bar on a terminal, :class:`LogProgress` otherwise.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over; without it, call ``update(n)`` (and ``close()``).
    total : float, optional
        Units of work (``len(iterable)`` by default).
    desc, unit : str
        What is counted, e.g. ``desc="features", unit="track"``.
    disable : bool
        Report nothing (callers pass ``disable=not progress``).
    leave : bool
        Keep the bar / log the closing line; inner loops (epochs, batches) pass False.
    **kwargs
        Passed to tqdm on a terminal (``unit_scale``, ``unit_divisor``, ``initial`` ...).

    Returns
    -------
    tqdm.tqdm or LogProgress
        Both iterate, ``update``, ``close`` and work as context managers.
    """
    if on_terminal() and not disable:
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, **kwargs)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=disable,
                       unit_scale=bool(kwargs.get("unit_scale", False)), initial=kwargs.get("initial", 0))


def write_line(text: str, *, file: TextIO | None = None) -> None:
    """Print a line without breaking a progress bar that may be on the terminal."""
    if on_terminal():
        from tqdm.auto import tqdm

        tqdm.write(text, file=file or sys.stdout)
    else:
        print(text, file=file or sys.stdout, flush=True)
