"""A block of spectra as an instrument file holds them: one axis, one intensity row per spectrum,
the columns that differ from spectrum to spectrum (stage coordinates, names) and the facts they
share (format, reader, laser). Maps, line scans and series are one block; so is a single spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import pandas as pd

from ramanid.spectra import SpectraSet, Spectrum


@dataclass
class Block:
    """``intensities`` (n, p) on ``shifts`` (p, increasing); ``columns`` hold n values each."""

    shifts: np.ndarray
    intensities: np.ndarray
    columns: dict[str, np.ndarray | list] = field(default_factory=dict)
    facts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.intensities)

    def spectra(self) -> list[Spectrum]:
        """One :class:`~ramanid.spectra.Spectrum` per row, its metadata the shared facts and its own columns."""
        facts = {k: v for k, v in self.facts.items() if v is not None}
        names = list(self.columns)
        rows = zip(*(self.columns[name] for name in names), strict=True) if names else [()] * len(self)
        return [
            Spectrum(self.shifts, np.asarray(row, dtype=np.float64), {**facts, **_present(names, values)})
            for row, values in zip(self.intensities, rows, strict=True)
        ]

    def as_set(self) -> SpectraSet:
        """The block as a :class:`~ramanid.spectra.SpectraSet` (float32, the facts as columns too)."""
        meta = pd.DataFrame({name: list(values) for name, values in self.columns.items()}, index=range(len(self)))
        for key, value in self.facts.items():
            if value is not None:
                meta[key] = value
        return SpectraSet(self.shifts, self.intensities, meta, {"format": self.facts.get("format")})


def _present(names: list[str], values: tuple) -> dict:
    """The row's own values, as plain Python numbers, without the missing ones."""
    return {
        n: v.item() if isinstance(v, np.generic) else v for n, v in zip(names, values, strict=True) if v is not None
    }


@cache
def package_version(name: str) -> str:
    """The installed version of a reader's package, for the metadata (looked up once)."""
    from importlib.metadata import version

    return version(name)
