"""The one exception family of ramanid.

Every message names the file (and line, or spectrum) and says what was expected.
"""

from __future__ import annotations

import unicodedata


class RamanIdError(Exception):
    """Base class of every error ramanid raises on purpose."""


class SpectrumFormatError(RamanIdError, ValueError):
    """A spectrum file or array cannot be read as a spectrum.

    Parameters
    ----------
    source : str
        The file (or zip member, or array name) that was being read.
    problem : str
        What was wrong and what was expected.
    line : int, optional
        1-based line number where the problem was found.
    """

    def __init__(self, source: str, problem: str, line: int | None = None):
        self.source = str(source)
        self.problem = problem
        self.line = line
        where = f"{self.source}, line {line}" if line is not None else self.source
        super().__init__(f"{where}: {problem}")


class ChemistryError(RamanIdError, ValueError):
    """A chemistry formula cannot be parsed into elements."""


class DatasetError(RamanIdError, ValueError):
    """A dataset cannot be built or loaded (bad source, nothing left after filtering, bad file)."""


class ModelError(RamanIdError, ValueError):
    """A model cannot be built or trained as asked (spectra too short, unknown option, labels unseen)."""


class OutputError(RamanIdError, OSError):
    """An output path that cannot or must not be written (special file, link, read-only, no access)."""


class PreprocessingError(RamanIdError, ValueError):
    """A preprocessing step or resampling cannot run as asked (unknown method, bad parameter)."""


def printable(text: str) -> str:
    """``text`` with its control characters (terminal escapes, newlines, NUL) shown as escapes,
    so that a name read from a file cannot rewrite or split what a terminal shows.
    """
    return "".join(
        c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in ("Cc", "Cs") else c for c in str(text)
    )
