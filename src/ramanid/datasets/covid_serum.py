"""The COVID-19 serum set of Yin et al. (2021): 465 spectra, Healthy / Suspected / COVID-19.

Yin G, Li L, Lu S, et al. (2021) *An efficient primary screening of COVID-19 by serum Raman
spectroscopy*, J. Raman Spectrosc. 52:949-958; data on figshare (record 12159924). It comes as
an 80/20 split (``train_*.npy``, ``test_*.npy``); both parts are loaded into one set, and the
``distributed_split`` column keeps the original assignment.
"""

from __future__ import annotations

import json
from pathlib import Path

from ramanid.errors import DatasetError
from ramanid.io.tables import read_npy
from ramanid.spectra import SpectraSet


def load_covid_serum(folder: str | Path) -> SpectraSet:
    """Load all 465 spectra from a folder holding the distributed ``.npy`` files and ``label.json``."""
    folder = Path(folder)
    label_file = folder / "label.json"
    if not label_file.is_file():
        raise DatasetError(f"{folder}: no label.json: expected the COVID serum folder (train_x.npy, ...)")
    try:
        names = json.loads(label_file.read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{label_file}: not valid JSON ({exc})") from exc
    parts = []
    for split in ("train", "test"):
        part = read_npy(folder / f"{split}_x.npy", folder / "wavenumber.npy", folder / f"{split}_y.npy", names)
        part.meta["distributed_split"] = split
        parts.append(part)
    spectra = SpectraSet.concat(parts)
    # distributed already processed by the authors: new spectra are only resampled onto this axis
    spectra.info = {"source": "covid_serum", "method": "linear", "preprocess": None}
    return spectra
