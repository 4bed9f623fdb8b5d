"""Synthetic Raman spectra from the table of published band positions shipped with ramanid.

For the offline demo and for tests: no download needed. Each spectrum is a sum of Lorentzian
bands (Lorentzian line shape, as for Raman bands of crystals) with jittered positions, widths
and intensities, on a smooth fluorescence-like baseline, with Gaussian noise and occasional
cosmic-ray spikes. The band table (``ramanid/data/raman_bands.csv``) cites its sources.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
import pandas as pd

from ramanid.chemistry import parse_elements
from ramanid.spectra import SpectraSet

GRID = np.linspace(100, 1400, 1024)


def band_table() -> pd.DataFrame:
    """The shipped table: mineral, chemistry, band positions (cm⁻¹) and relative intensities."""
    text = resources.files("ramanid.data").joinpath("raman_bands.csv").read_text(encoding="utf-8")
    rows = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    table = pd.read_csv(io.StringIO(rows), dtype=str)  # not comment="#": formulas hold "&#183;"
    table["bands"] = table["bands"].map(lambda s: np.array(s.split(), dtype=float))
    table["intensities"] = table["intensities"].map(lambda s: np.array(s.split(), dtype=float))
    return table


def synthetic_spectra(
    per_mineral: int = 20,
    minerals=None,
    shifts=GRID,
    noise: float = 0.02,
    baseline: float = 0.5,
    spike_rate: float = 0.1,
    random_state: int = 0,
) -> SpectraSet:
    """Raw-like spectra (unscaled, with baseline, noise and spikes) of the table's minerals."""
    rng = np.random.default_rng(random_state)
    table = band_table()
    if minerals is not None:
        table = table[table["mineral"].isin(list(minerals))]
    rows, meta = [], []
    t = (shifts - shifts[0]) / (shifts[-1] - shifts[0])
    for record in table.itertuples():
        elements = " ".join(sorted(parse_elements(record.chemistry)))
        for k in range(per_mineral):
            centres = record.bands + rng.normal(0, 1.5, len(record.bands)) + rng.normal(0, 1.0)
            widths = rng.uniform(3, 9, len(record.bands))
            heights = record.intensities * rng.uniform(0.8, 1.2, len(record.bands))
            peaks = (heights[:, None] / (1 + ((shifts[None, :] - centres[:, None]) / widths[:, None]) ** 2)).sum(0)
            drift = baseline * rng.uniform(0, 1) * (rng.uniform(0.3, 1) * t + rng.uniform(-0.5, 0.5) * t**2 + 0.2)
            spectrum = rng.uniform(500, 5000) * (peaks + drift + noise * rng.normal(size=len(shifts)))
            if rng.uniform() < spike_rate:
                spectrum[rng.integers(len(shifts))] += spectrum.max() * rng.uniform(0.5, 2)
            rows.append(spectrum)
            meta.append(
                {
                    "file": f"synthetic/{record.mineral}_{k}",
                    "mineral": record.mineral,
                    "rruff_id": f"SYN-{record.mineral}-{k % 4}",
                    "chemistry": record.chemistry,
                    "elements": elements,
                    "kind": "raw",
                    "wavelength": np.nan,
                }
            )
    return SpectraSet(shifts, np.array(rows), pd.DataFrame(meta))
