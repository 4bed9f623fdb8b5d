"""The mixture protocol: synthetic mixtures of held-out specimens' spectra, and how well each
method names their minerals and shares.

A mixture is made as a measurement would be: each component spectrum (as read from its file)
put on a common axis (the range every component covers), scaled to a strongest band of 1 above
its 1st percentile, weighted by its fraction and summed; then, where asked, degraded by a
condition of :mod:`ramanid.evaluation.degradation`. The truth each method is scored against is
each mineral's share of the mixture's area, the quantity :mod:`ramanid.mixture` estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ramanid.mixture import min_max
from ramanid.preprocessing.resample import resample_spectrum
from ramanid.spectra import Spectrum


@dataclass
class Mix:
    """A synthetic mixture: its spectrum, its minerals and their true area shares."""

    spectrum: Spectrum
    minerals: tuple[str, ...]
    shares: tuple[float, ...]


def make_mix(components: list[Spectrum], weights, name: str) -> Mix:
    """Mix ``components`` with ``weights`` (see the module docstring)."""
    low = max(s.shifts[0] for s in components)
    high = min(s.shifts[-1] for s in components)
    step = min(float(np.median(np.diff(s.shifts))) for s in components)
    axis = np.arange(low, high, step)
    parts = []
    for s in components:
        y = resample_spectrum(s.shifts, s.intensities, axis) - np.percentile(s.intensities, 1)
        parts.append(y / max(float(y.max()), 1e-12))
    weights = np.asarray(weights, dtype=np.float64)
    mixture = sum(w * p for w, p in zip(weights, parts, strict=True))
    areas = np.array([w * np.clip(p, 0, None).sum() for w, p in zip(weights, parts, strict=True)])
    minerals = tuple(str(s.meta["mineral"]) for s in components)
    return Mix(Spectrum(axis, mixture, {"file": name}), minerals, tuple((areas / areas.sum()).tolist()))


def score_sets(truth: Mix, named: list[str], shares: list[float] | None = None) -> dict:
    """Exact set, recall, precision, a wrong mineral named (``extra``), more minerals named than
    there are (``spurious``) and, where shares are given, the mean absolute share error.
    """
    true, found = set(truth.minerals), set(named)
    row = {
        "exact": float(true == found),
        "recall": len(true & found) / len(true),
        "precision": len(true & found) / len(found) if found else 0.0,
        "extra": float(len(found - true) > 0),
        "spurious": float(len(found) > len(true)),
    }
    if shares is not None:
        estimate = dict(zip(named, shares, strict=True))
        row["share_mae"] = float(
            np.mean([abs(estimate.get(m, 0.0) - s) for m, s in zip(truth.minerals, truth.shares, strict=True)])
        )
    return row


def residual_subtraction(identifier, query: np.ndarray, components: int, exclude=None) -> list[str]:
    """The commercial baseline: identify, subtract the least-squares-scaled best reference,
    min-max the residual, identify it, and repeat ``components`` times.
    """
    named, residual = [], np.asarray(query, dtype=np.float64)
    blocked = np.zeros(len(identifier.reference_spectra_), dtype=bool) if exclude is None else exclude
    for _ in range(components):
        similarity = identifier.similarity(residual[None, :].astype(np.float32), excluded=blocked[None, :])[0]
        for mineral in named:  # a mineral found is not found again
            similarity[identifier.labels_ == mineral] = -np.inf
        best = int(np.argmax(similarity))
        named.append(str(identifier.labels_[best]))
        reference = identifier.reference_spectra_[best].astype(np.float64)
        scale = max(float(residual @ reference) / max(float(reference @ reference), 1e-12), 0.0)
        residual = min_max(residual - scale * reference)
    return named
