"""Targets from a SpectraSet: mineral names, element sets from chemistry, or any label column."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ramanid.chemistry import DEFAULT_ELEMENTS, readable_elements
from ramanid.errors import DatasetError, ModelError
from ramanid.spectra import SpectraSet

#: ``--elements all``: every element found in at least this many distinct minerals
ALL_ELEMENTS_MIN_MINERALS = 30


def common_elements(spectra: SpectraSet, column: str = "chemistry", min_minerals: int = 30) -> tuple[str, ...]:
    """The elements present in at least ``min_minerals`` distinct minerals, most common first."""
    counts: dict[str, set] = {}
    minerals = spectra.meta["mineral"] if "mineral" in spectra.meta else spectra.meta.index.astype(str)
    for mineral, formula in zip(minerals, spectra.meta[column], strict=True):
        for element in readable_elements(formula) or ():
            counts.setdefault(element, set()).add(mineral)
    common = [e for e, found in counts.items() if len(found) >= min_minerals]
    if not common:
        raise DatasetError(f"no element is found in {min_minerals} or more minerals of this set")
    return tuple(sorted(common, key=lambda e: (-len(counts[e]), e)))


#: where element labels come from: RRUFF's ideal formula, or the measured chemistry line
CHEMISTRY_COLUMNS = {"ideal": "chemistry", "measured": "measured_chemistry"}


def element_matrix(
    spectra: SpectraSet, elements: Sequence[str], column: str = "chemistry"
) -> tuple[np.ndarray, np.ndarray]:
    """``(Y, usable)``: a 0/1 matrix ``(n, len(elements))`` from each spectrum's formula in
    ``column``, and a mask of the spectra whose formula is present and readable (the others have
    no label).
    """
    if column not in spectra.meta:
        raise DatasetError(f"the set has no {column!r} column: element targets need RRUFF's chemistry lines")
    Y = np.zeros((len(spectra), len(elements)), dtype=np.int64)
    usable = np.zeros(len(spectra), dtype=bool)
    for i, formula in enumerate(spectra.meta[column]):
        present = readable_elements(formula)
        if present is None:
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


def check_presence(Y, elements) -> np.ndarray:
    """``Y`` as an ``(n, len(elements))`` 0/1 integer matrix, or a :class:`ModelError` saying what is wrong."""
    Y = np.asarray(Y)
    Y = Y.reshape(len(Y), -1)
    if Y.shape[1] != len(elements):
        raise ModelError(f"Y has {Y.shape[1]} columns for {len(elements)} elements {list(elements)}")
    if not np.isin(Y, (0, 1)).all():
        raise ModelError("Y must hold 0/1 (absent/present) for each element")
    return Y.astype(np.int64)


@dataclass(frozen=True)
class Task:
    """``mineral`` (multiclass), ``elements`` (multi-label) or ``label:COLUMN`` (any column)."""

    kind: str
    column: str | None = None
    elements: tuple[str, ...] = DEFAULT_ELEMENTS
    positive: str | None = None
    chemistry: str = "chemistry"

    @classmethod
    def parse(
        cls,
        spec: str,
        elements: Sequence[str] = DEFAULT_ELEMENTS,
        positive: str | None = None,
        chemistry: str = "ideal",
    ) -> Task:
        """``"mineral"``, ``"elements"`` or ``"label:COLUMN"``.

        ``positive`` names the positive class of a binary task. ``chemistry`` is where element
        labels come from: ``"ideal"`` (RRUFF's IDEAL CHEMISTRY formula, the default) or
        ``"measured"`` (its MEASURED CHEMISTRY line, which many files lack; those are left out).
        """
        if chemistry not in CHEMISTRY_COLUMNS:
            raise DatasetError(f"chemistry {chemistry!r}: expected one of {sorted(CHEMISTRY_COLUMNS)}")
        kind, _, column = spec.partition(":")
        if kind == "mineral":
            return cls("label", "mineral", positive=positive)
        if kind == "elements":
            return cls("elements", None, tuple(elements), chemistry=CHEMISTRY_COLUMNS[chemistry])
        if kind == "label" and column:
            return cls("label", column, positive=positive)
        raise DatasetError(f"unknown task {spec!r}: expected mineral, elements or label:COLUMN")

    def targets(self, spectra: SpectraSet) -> tuple[np.ndarray, np.ndarray]:
        """(targets, mask of usable spectra)."""
        if self.kind == "elements":
            return element_matrix(spectra, self.elements, self.chemistry)
        return label_vector(spectra, self.column), np.ones(len(spectra), dtype=bool)

    def resolved(self, spectra: SpectraSet, min_minerals: int = ALL_ELEMENTS_MIN_MINERALS) -> Task:
        """``elements=("all",)`` replaced by every element present in at least ``min_minerals``
        distinct minerals of ``spectra``; any other task unchanged.
        """
        if self.kind != "elements" or tuple(self.elements) != ("all",):
            return self
        return dataclasses.replace(self, elements=common_elements(spectra, self.chemistry, min_minerals))

    def labelled(self, spectra: SpectraSet, log=print) -> tuple[SpectraSet, np.ndarray]:
        """The spectra that have a target, and their targets; says how many were left out."""
        y, usable = self.targets(spectra)
        if not usable.all():
            log(f"{int((~usable).sum())} spectra have no readable chemistry and are left out")
            spectra, y = spectra.subset(usable), y[usable]
        if self.kind == "label" and len(np.unique(y)) < 2:
            held = f"one class ({str(y[0])[:60]!r})" if len(y) else "no spectra"
            raise DatasetError(f"the {self.column!r} labels hold {held}: a classifier needs at least two classes")
        return spectra, y
