"""Shift grids: ``100:1400:1024`` (start:stop:points) or ``auto:0.95:1024`` (the range a share covers)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ramanid.errors import DatasetError

#: more points than any Raman spectrometer gives; a larger grid is a typo that would exhaust memory
MAX_POINTS = 65_536


@dataclass(frozen=True)
class Grid:
    """``points`` evenly spaced shifts from ``start`` to ``stop`` (both included), in cm⁻¹."""

    start: float = 100.0
    stop: float = 1400.0
    points: int = 1024

    def __post_init__(self):
        if not (np.isfinite(self.start) and np.isfinite(self.stop) and self.start < self.stop):
            raise DatasetError(f"grid {self.start}:{self.stop}: expected start < stop")
        if not 2 <= self.points <= MAX_POINTS:
            raise DatasetError(f"grid with {self.points} points: expected 2 to {MAX_POINTS}")

    @property
    def axis(self) -> np.ndarray:
        return np.linspace(self.start, self.stop, self.points)

    def __str__(self) -> str:
        return f"{self.start:g}:{self.stop:g}:{self.points}"


@dataclass(frozen=True)
class AutoGrid:
    """The widest range that a share of the spectra covers in full, with ``points`` points.

    ``share=0.95``: the start is the 95th percentile of the spectra's first shifts and the
    stop the 5th percentile of their last shifts.
    """

    share: float = 0.95
    points: int = 1024

    def resolve(self, starts, stops) -> Grid:
        if not 0 < self.share <= 1:
            raise DatasetError(f"auto grid share {self.share}: expected a number in (0, 1]")
        start = float(np.percentile(starts, 100 * self.share))
        stop = float(np.percentile(stops, 100 * (1 - self.share)))
        if start >= stop:
            raise DatasetError(
                f"no range is covered by {self.share:.0%} of the spectra ({start:.1f} >= {stop:.1f}): "
                "lower the share or give the range"
            )
        return Grid(start, stop, self.points)


def parse_grid(text: str) -> Grid | AutoGrid:
    """Parse ``START:STOP:POINTS`` or ``auto:SHARE:POINTS``."""
    parts = str(text).split(":")
    try:
        if len(parts) == 3 and parts[0].strip().lower() == "auto":
            return AutoGrid(float(parts[1]), int(parts[2]))
        if len(parts) == 3:
            return Grid(float(parts[0]), float(parts[1]), int(parts[2]))
    except DatasetError:
        raise
    except ValueError:
        pass
    raise DatasetError(f"grid {text!r}: expected START:STOP:POINTS (e.g. 100:1400:1024) or auto:SHARE:POINTS")
