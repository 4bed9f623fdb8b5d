"""The Bacteria-ID set of Ho et al. (2019): Raman spectra of 30 bacterial and yeast isolates.

Ho C-S, Jean N, Hogan C A, et al. (2019), *Rapid identification of pathogenic bacteria using
Raman spectroscopy and deep learning*, Nature Communications 10:4927; data linked from
github.com/csho33/bacteria-ID. It comes as three parts, which give the protocol: pretrain on the
reference set (``X_reference.npy``, 60,000 spectra), fine-tune on ``X_finetune.npy`` (3,000),
test on ``X_test.npy`` (3,000). The ``role`` column holds ``pretrain``/``finetune``/``test``, so
``ramanid cv --split predefined:role`` runs that protocol.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ramanid.errors import DatasetError
from ramanid.io.tables import read_npy
from ramanid.spectra import SpectraSet

#: the isolate of each integer label, as listed in the authors' config.py
ISOLATES = [
    "C. albicans",
    "C. glabrata",
    "K. aerogenes",
    "E. coli 1",
    "E. coli 2",
    "E. faecium",
    "E. faecalis 1",
    "E. faecalis 2",
    "E. cloacae",
    "K. pneumoniae 1",
    "K. pneumoniae 2",
    "P. mirabilis",
    "P. aeruginosa 1",
    "P. aeruginosa 2",
    "MSSA 1",
    "MSSA 3",
    "MRSA 1 (isogenic)",
    "MRSA 2",
    "MSSA 2",
    "S. enterica",
    "S. epidermidis",
    "S. lugdunensis",
    "S. marcescens",
    "S. pneumoniae 2",
    "S. pneumoniae 1",
    "S. sanguinis",
    "Group A Strep.",
    "Group B Strep.",
    "Group C Strep.",
    "Group G Strep.",
]
#: the published axis (1,000 points over 381.98-1792.4 cm-1), used where no wavenumbers.npy is given
PUBLISHED_AXIS = (381.98, 1792.4, 1000)
PARTS = {"reference": "pretrain", "finetune": "finetune", "test": "test"}


def load_bacteria_id(folder: str | Path) -> SpectraSet:
    """Load the reference, fine-tuning and test parts from a folder of the distributed ``.npy``
    files (``X_reference.npy``, ``y_reference.npy``, ...; ``wavenumbers.npy`` if present).
    """
    folder = Path(folder)
    missing = [f"{axis}_{part}.npy" for part in PARTS for axis in "Xy" if not (folder / f"{axis}_{part}.npy").is_file()]
    if missing:
        raise DatasetError(
            f"{folder}: missing {', '.join(missing)}: expected the Bacteria-ID files "
            "(X_reference.npy, y_reference.npy, X_finetune.npy, y_finetune.npy, X_test.npy, y_test.npy)"
        )
    axis_file = folder / "wavenumbers.npy"
    axis = axis_file if axis_file.is_file() else np.linspace(*PUBLISHED_AXIS)
    parts = []
    for part, role in PARTS.items():
        spectra = read_npy(folder / f"X_{part}.npy", axis, folder / f"y_{part}.npy", ISOLATES)
        spectra.meta["role"] = role
        parts.append(spectra)
    spectra = SpectraSet.concat(parts)
    spectra.info = {
        "source": "bacteria_id",
        "method": "linear",
        "preprocess": None,
        "axis": "wavenumbers.npy" if axis_file.is_file() else "published: 1,000 points, 381.98-1792.4 cm-1",
    }
    return spectra
