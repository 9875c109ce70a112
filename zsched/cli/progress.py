"""A dependency-free progress bar on stderr, for long work (bulk schedules, benchmarks, chaos runs)."""

from __future__ import annotations

import sys
import time


class Progress:
    """A dependency-free progress bar on stderr; silent when ``enabled`` is False."""

    def __init__(self, label: str, total: int, *, enabled: bool = True, width: int = 28) -> None:
        self.label, self.total, self.enabled, self.width = label, max(total, 1), enabled, width
        self.live = enabled and sys.stderr.isatty()  # redraw in place only on a terminal; else one line
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0

    def update(self, n: int = 1) -> None:
        """Advance by ``n``; redraws at most ten times a second."""
        self.done += n
        now = time.monotonic()
        if self.live and (now - self._drawn > 0.1 or self.done >= self.total):
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        frac = min(1.0, self.done / self.total)
        bar = "#" * int(frac * self.width)
        rate = self.done / max(now - self.started, 1e-9)
        sys.stderr.write(f"\r  {self.label:<40} [{bar:<{self.width}}] {frac:4.0%} {self.done:>9,} {rate:>10,.0f}/s ")
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled:
            self._draw(time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
