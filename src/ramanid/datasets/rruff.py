"""Build a :class:`~ramanid.spectra.SpectraSet` from RRUFF files.

The defaults are those of the element-identification reference: 780 nm processed spectra,
minerals with a single spectrum dropped, linear interpolation onto 1024 points over
100-1400 cm⁻¹, then min-max scaling. Where a spectrum does not cover the grid, the grid
points beyond its measured range take its first or last measured value (``numpy.interp``'s
rule); the share it covers is kept in the ``coverage`` column, and ``min_coverage`` drops
spectra that cover less.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ramanid.chemistry import readable_elements
from ramanid.errors import DatasetError
from ramanid.io.rruff import MAX_MEMBER_BYTES, Skipped, read_rruff
from ramanid.preprocessing.grid import AutoGrid, Grid, parse_grid
from ramanid.preprocessing.presets import output_shifts, pipeline_from_spec, steps_of
from ramanid.preprocessing.resample import METHODS as RESAMPLING
from ramanid.preprocessing.resample import coverage, resample_spectrum
from ramanid.spectra import SpectraSet, Spectrum

KINDS = ("processed", "raw", "all")
#: the element reference's grid: 1024 points over 100-1400 cm-1
DEFAULT_GRID = Grid()


@dataclass
class BuildResult:
    """The built set and what was left out, with the reason for each."""

    spectra: SpectraSet
    skipped: list[Skipped] = field(default_factory=list)
    options: dict = field(default_factory=dict)

    def summary(self) -> str:
        meta = self.spectra.meta
        elements = Counter(e for row in meta.get("elements", []) for e in row.split())
        no_chemistry = int((meta.get("elements", pd.Series(dtype=str)) == "").sum())
        lines = [
            f"spectra: {len(self.spectra)} on {len(self.spectra.shifts)} points "
            f"({self.spectra.shifts[0]:.1f}-{self.spectra.shifts[-1]:.1f} cm-1)",
            f"minerals: {meta['mineral'].nunique() if 'mineral' in meta else 0}",
            f"elements: {len(elements)} distinct; "
            + ", ".join(f"{e} {n}" for e, n in elements.most_common(12))
            + (f"; {no_chemistry} spectra without readable chemistry" if no_chemistry else ""),
            f"skipped: {len(self.skipped)}",
        ]
        lines += [f"  - {s.file}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def build_rruff(
    source: str | Path | Sequence[str | Path],
    *,
    wavelengths: Iterable[float] | None = (780,),
    kind: str = "processed",
    min_per_mineral: int = 2,
    grid: Grid | AutoGrid | str = DEFAULT_GRID,
    method: str = "linear",
    min_coverage: float = 0.0,
    preprocess: str | Pipeline = "minmax",
    jobs: int | None = None,
    strict: bool = False,
    progress: bool = False,
    max_member_bytes: int = MAX_MEMBER_BYTES,
) -> BuildResult:
    """Read, filter, resample and scale RRUFF spectra into one :class:`SpectraSet`.

    Parameters
    ----------
    source
        The official RRUFF zip (read without unpacking), a folder, or a list of ``.txt`` files.
    wavelengths
        Excitation wavelengths in nm to keep; ``None`` keeps all (blank ones included).
    kind : {"processed", "raw", "all"}
    min_per_mineral : int
        Drop minerals with fewer spectra (2: the element reference; 10: RamanNet).
    grid : Grid, AutoGrid or str
        ``"100:1400:1024"`` or ``"auto:0.95:1024"``.
    method : {"linear", "cubic", "pchip"}
        Resampling method.
    min_coverage : float
        Drop spectra that cover less than this share of the grid (reported as skipped).
    preprocess : str or Pipeline
        Applied to the resampled matrix: a preset (``reference``, ``robust``), a step string
        (``"despike, arpls(lam=1e5), vector"``; see :mod:`ramanid.preprocessing.presets`) or a
        pipeline made for this grid. Default: min-max scaling of each spectrum.
    jobs, strict, progress
        Worker processes; raise on the first bad file instead of skipping it; progress bar.
    max_member_bytes : int
        Zip members larger than this once decompressed are skipped unread (zip bombs).
    """
    if kind not in KINDS:
        raise DatasetError(f"kind {kind!r}: expected one of {KINDS}")
    grid = parse_grid(grid) if isinstance(grid, str) else grid
    steps = steps_of(preprocess)
    probe = pipeline_from_spec(steps, grid.axis) if isinstance(grid, Grid) else pipeline_from_spec(steps)
    if isinstance(grid, Grid):  # a bad step, or one that does not fit the grid, fails now, not after reading
        probe.fit_transform(np.sin(grid.axis / 50.0)[None] + 2.0)
    if method not in RESAMPLING:
        raise DatasetError(f"resampling {method!r}: expected one of {RESAMPLING}")
    wanted = None if wavelengths is None else {float(w) for w in wavelengths}

    def select(meta: dict) -> bool:
        if kind != "all" and meta.get("kind", kind) != kind:
            return False
        return wanted is None or meta.get("wavelength") in wanted

    spectra, skipped = read_rruff(
        source, select, jobs=jobs, strict=strict, progress=progress, max_member_bytes=max_member_bytes
    )
    if not spectra:
        reasons = "".join(f"; {s.reason}" for s in skipped[:5]) + ("; ..." if len(skipped) > 5 else "")
        raise DatasetError(
            f"{source}: no {kind} spectra at {sorted(wanted) if wanted else 'any'} nm were read "
            f"({len(skipped)} files skipped{reasons})"
        )
    if isinstance(grid, AutoGrid):
        grid = grid.resolve([s.shifts[0] for s in spectra], [s.shifts[-1] for s in spectra])
    axis = grid.axis
    kept = []
    for s in spectra:
        share = coverage(s.shifts, axis)
        if share < max(min_coverage, 1e-12):
            skipped.append(Skipped(s.source, f"covers {share:.0%} of the grid {grid} (minimum {min_coverage:.0%})"))
        else:
            s.meta["coverage"] = share
            kept.append(s)
    kept = _enough_per_mineral(kept, min_per_mineral)
    if not kept:
        raise DatasetError(f"{source}: no mineral has {min_per_mineral} or more spectra after filtering")
    matrix = np.stack([resample_spectrum(s.shifts, s.intensities, axis, method) for s in kept])
    if isinstance(preprocess, str):
        preprocess = pipeline_from_spec(preprocess, axis, n_jobs=jobs)
    matrix = preprocess.fit_transform(matrix.astype(np.float32))
    axis = output_shifts(preprocess, axis)
    meta = pd.DataFrame([s.meta for s in kept])
    meta["elements"] = [_element_text(m.get("chemistry")) for m in meta.to_dict("records")]
    options = {
        "source": "rruff",
        "wavelengths": None if wanted is None else sorted(wanted),
        "kind": kind,
        "min_per_mineral": min_per_mineral,
        "grid": str(grid),
        "method": method,
        "min_coverage": min_coverage,
        "preprocess": steps,
    }
    return BuildResult(SpectraSet(axis, matrix, meta, options), skipped, options)


def _enough_per_mineral(spectra: list[Spectrum], minimum: int) -> list[Spectrum]:
    counts = Counter(s.meta.get("mineral") for s in spectra)
    return [s for s in spectra if counts[s.meta.get("mineral")] >= minimum]


def _element_text(chemistry) -> str:
    """Sorted element symbols, space separated; '' where the formula is missing or unreadable."""
    return " ".join(sorted(readable_elements(chemistry) or ()))
