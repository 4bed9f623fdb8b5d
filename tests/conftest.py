"""Shared fixtures: real data from ../shared/data, read once per session; seeded randomness."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RRUFF_ZIP = SHARED / "rruff" / "excellent_unoriented.zip"
COVID_DIR = SHARED / "covid_serum"
ECOLI = SHARED / "ecoli_growth_phase" / "ecoli_growth_phase.csv.gz"


def _require(path: Path) -> Path:
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must run with ../shared/data beside the checkout")
        pytest.skip(f"{path} is missing (the shared data lives beside the checkout)")
    return path


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - code under test may use the legacy global generator
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def rruff_zip() -> Path:
    return _require(RRUFF_ZIP)


@pytest.fixture(scope="session")
def covid_dir() -> Path:
    return _require(COVID_DIR)


@pytest.fixture(scope="session")
def ecoli():
    """The E. coli growth-phase set as `ramanid build table --label label --group replicate` builds it."""
    from ramanid.datasets.table import build_table

    return build_table(_require(ECOLI), label="label", group="replicate")


@pytest.fixture(scope="session")
def rruff_all(rruff_zip):
    """Every file of the shared zip, read once: (spectra, skipped)."""
    from ramanid.io.rruff import read_rruff

    return read_rruff(rruff_zip)


@pytest.fixture(scope="session")
def rruff_780(rruff_zip):
    """The default build: 780 nm processed, >= 2 per mineral, 1024 points over 100-1400 cm-1."""
    from ramanid.datasets.rruff import build_rruff

    return build_rruff(rruff_zip)


@pytest.fixture(scope="session")
def rruff_raw10(rruff_zip):
    """The RamanNet protocol's set: raw spectra of every wavelength, >= 10 per mineral."""
    from ramanid.datasets.rruff import build_rruff

    return build_rruff(rruff_zip, wavelengths=None, kind="raw", min_per_mineral=10)


def rruff_text(rows="100.0, 1.0\r\n200.0, 3.0\r\n300.0, 2.0\r\n", chemistry="Pb_5_(PO_4_)_3_Cl", name="Test") -> str:
    """A small file in RRUFF's published layout."""
    chem = f"##IDEAL CHEMISTRY={chemistry}\r\n" if chemistry is not None else ""
    return (
        f"##NAMES={name}\r\n##RRUFFID=R000001\r\n{chem}##LOCALITY=Somewhere\r\n"
        f"##URL=rruff.info/R000001\r\n{rows}##END=\n\n"
    )
