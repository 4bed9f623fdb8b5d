"""Targets from a SpectraSet: mineral names, element sets from chemistry, or any label column."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ramanid.chemistry import parse_elements
from ramanid.errors import ChemistryError, DatasetError
from ramanid.spectra import SpectraSet


def element_matrix(spectra: SpectraSet, elements: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(Y, usable)``: a 0/1 matrix ``(n, len(elements))`` from each spectrum's chemistry formula,
    and a mask of the spectra whose formula is present and readable (the others have no label)."""
    if "chemistry" not in spectra.meta:
        raise DatasetError("the set has no 'chemistry' column: element targets need RRUFF IDEAL CHEMISTRY")
    Y = np.zeros((len(spectra), len(elements)), dtype=np.int64)
    usable = np.zeros(len(spectra), dtype=bool)
    for i, formula in enumerate(spectra.meta["chemistry"]):
        if not isinstance(formula, str):
            continue
        try:
            present = parse_elements(formula)
        except ChemistryError:
            continue
        Y[i] = [e in present for e in elements]
        usable[i] = True
    return Y, usable


def label_vector(spectra: SpectraSet, column: str) -> np.ndarray:
    """The values of a metadata column as class labels (strings); missing values are an error."""
    if column not in spectra.meta:
        raise DatasetError(f"no column {column!r} to use as labels: have {list(spectra.meta.columns)}")
    values = spectra.meta[column]
    if values.isna().any():
        raise DatasetError(f"column {column!r} has {int(values.isna().sum())} missing labels")
    return values.astype(str).to_numpy()
