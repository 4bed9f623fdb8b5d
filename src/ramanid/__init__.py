"""ramanid: identify minerals, their elements and other sample classes from Raman spectra."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ramanid.errors import ChemistryError, DatasetError, RamanIdError, SpectrumFormatError
from ramanid.spectra import SpectraSet

try:
    __version__ = version("ramanid")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "ChemistryError",
    "DatasetError",
    "RamanIdError",
    "SpectraSet",
    "SpectrumFormatError",
    "__version__",
]
