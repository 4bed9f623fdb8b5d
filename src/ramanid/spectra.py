"""SpectraSet: many spectra on one shift grid, with a metadata table."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ramanid.atomic import atomic_write
from ramanid.errors import DatasetError, RamanIdError, SpectrumFormatError

FORMAT_VERSION = 1


@dataclass
class SpectraSet:
    """An ``n x p`` float32 intensity matrix on one shift axis, plus one metadata row per spectrum.

    Parameters
    ----------
    shifts : array of shape (p,)
        Raman shift of each column, in cm⁻¹, strictly increasing.
    intensities : array of shape (n, p)
        Stored as float32.
    meta : pandas.DataFrame, optional
        One row per spectrum (name, RRUFF id, wavelength, chemistry, ...).
    info : dict, optional
        How the set was made (source, grid, resampling, preprocessing), JSON-ready; a saved
        model copies it so that new spectra are treated the same way.
    """

    shifts: np.ndarray
    intensities: np.ndarray
    meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.shifts = np.asarray(self.shifts, dtype=np.float64)
        self.intensities = np.asarray(self.intensities, dtype=np.float32)
        if self.intensities.ndim != 2 or self.intensities.shape[1] != self.shifts.shape[0]:
            raise DatasetError(
                f"intensities of shape {self.intensities.shape} do not match "
                f"{self.shifts.shape[0]} shifts: expected (n, {self.shifts.shape[0]})"
            )
        if self.meta is None or self.meta.shape[1] == 0:
            self.meta = pd.DataFrame(index=range(len(self.intensities)))
        if len(self.meta) != len(self.intensities):
            raise DatasetError(f"{len(self.meta)} metadata rows for {len(self.intensities)} spectra: expected one each")
        self.meta = self.meta.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.intensities)

    def __repr__(self) -> str:
        lo, hi = (self.shifts[0], self.shifts[-1]) if len(self.shifts) else (np.nan, np.nan)
        return (
            f"SpectraSet({len(self)} spectra x {len(self.shifts)} points, "
            f"{lo:.1f}-{hi:.1f} cm-1, columns={list(self.meta.columns)})"
        )

    def subset(self, index: Sequence[int] | np.ndarray) -> "SpectraSet":
        """The spectra at ``index`` (integer positions or a boolean mask), in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return SpectraSet(self.shifts.copy(), self.intensities[index], self.meta.iloc[index].copy(), dict(self.info))

    def select(self, mask=None, **equals) -> "SpectraSet":
        """The spectra where ``mask`` holds and every ``column=value`` matches.

        A value may be a list, meaning "any of these". Example: ``select(kind="raw",
        wavelength=[780, 785])``.
        """
        keep = np.ones(len(self), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        for column, value in equals.items():
            if column not in self.meta:
                raise DatasetError(f"no metadata column {column!r}: have {list(self.meta.columns)}")
            values = value if isinstance(value, (list, tuple, set, np.ndarray)) else [value]
            keep &= self.meta[column].isin(list(values)).to_numpy()
        return self.subset(keep)

    @classmethod
    def concat(cls, sets: Iterable["SpectraSet"]) -> "SpectraSet":
        """Stack sets that share one shift grid."""
        sets = list(sets)
        if not sets:
            raise DatasetError("nothing to concatenate: expected at least one SpectraSet")
        for other in sets[1:]:
            if other.shifts.shape != sets[0].shifts.shape or not np.allclose(other.shifts, sets[0].shifts):
                raise DatasetError("cannot concatenate spectra on different shift grids: resample first")
        return cls(
            sets[0].shifts.copy(),
            np.concatenate([s.intensities for s in sets]),
            pd.concat([s.meta for s in sets], ignore_index=True),
            dict(sets[0].info),
        )

    def save(self, path: str | Path) -> Path:
        """Write one compressed ``.npz`` file (no pickle); the round trip is exact."""
        path = Path(path)
        columns = [
            {"name": str(c), "dtype": str(self.meta[c].dtype), "values": _json_values(self.meta[c])}
            for c in self.meta.columns
        ]
        header = json.dumps(
            {"format": "ramanid.SpectraSet", "version": FORMAT_VERSION, "columns": columns, "info": self.info}
        )
        with atomic_write(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, shifts=self.shifts, intensities=self.intensities, meta=np.array(header))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SpectraSet":
        """Read a file written by :meth:`save`. Never unpickles."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"{path}: no such file: expected a SpectraSet written by 'ramanid build'")
        try:
            with np.load(path, allow_pickle=False) as data:
                shifts, intensities = data["shifts"], data["intensities"]
                header = json.loads(str(data["meta"]))
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DatasetError(f"{path}: not a SpectraSet file ({exc})") from exc
        if not isinstance(header, dict) or header.get("format") != "ramanid.SpectraSet":
            kind = header.get("format") if isinstance(header, dict) else type(header).__name__
            raise DatasetError(f"{path}: not a SpectraSet file (format={kind!r})")
        if intensities.dtype.kind not in "fiu" or shifts.dtype.kind not in "fiu":
            raise DatasetError(
                f"{path}: intensities and shifts must be numbers, not {intensities.dtype}/{shifts.dtype}"
            )
        try:
            check_shifts(shifts, f"{path} (shifts)")
            columns = header["columns"]
            meta = pd.DataFrame(index=range(len(intensities)))
            for column in columns:
                values = column["values"]
                if not isinstance(values, list) or len(values) != len(intensities):
                    raise DatasetError(
                        f"{path}: metadata column {column.get('name')!r} has "
                        f"{len(values) if isinstance(values, list) else 'no'} values for "
                        f"{len(intensities)} spectra"
                    )
                meta[str(column["name"])] = pd.Series(values, dtype=_restore_dtype(column["dtype"]))
            info = header.get("info", {})
            if not isinstance(info, dict):
                raise DatasetError(f"{path}: 'info' must be a JSON object")
        except RamanIdError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise DatasetError(f"{path}: malformed SpectraSet header ({type(exc).__name__}: {exc})") from exc
        return cls(shifts, intensities, meta, info)


def _json_values(column: pd.Series) -> list:
    if column.dtype.kind == "f":
        return [None if np.isnan(v) else float(v) for v in column.to_numpy()]
    if column.dtype.kind in "iub":
        return column.to_numpy().tolist()
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in column]


def _restore_dtype(name: str):
    return object if name == "object" else name


@dataclass
class Spectrum:
    """One measured spectrum on its own shift axis, as a reader returns it."""

    shifts: np.ndarray
    intensities: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        return str(self.meta.get("file", "<spectrum>"))


def check_shifts(shifts, source: str = "shift axis") -> np.ndarray:
    """A finite, strictly increasing shift axis with at least two points, or a clear error."""
    shifts = np.asarray(shifts, dtype=np.float64)
    if shifts.ndim != 1 or len(shifts) < 2:
        raise SpectrumFormatError(source, f"expected at least 2 shifts in a 1-D axis, got shape {shifts.shape}")
    if not np.all(np.isfinite(shifts)):
        raise SpectrumFormatError(source, "the shift axis holds NaN or infinite values")
    if not np.all(np.diff(shifts) > 0):
        raise SpectrumFormatError(source, "the shift axis is not strictly increasing")
    return shifts
