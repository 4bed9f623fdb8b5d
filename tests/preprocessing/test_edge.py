"""An edge filter's cut under a background, found on real spectra as the degradation protocol and an
instrument write them."""

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ramanid.bundle import BundleError, load_bundle
from ramanid.evaluation.degradation import Condition, conditions, degrade
from ramanid.io.files import read_one
from ramanid.preprocessing.edge import CLEAR_CM1, filter_edges
from ramanid.spectra import Spectrum
from tests.conftest import SHARED, _require


@pytest.fixture(scope="module")
def spectra(rruff_780):
    built = rruff_780.spectra.subset(range(0, 600, 10))
    return [Spectrum(built.shifts, row.astype(np.float64)) for row in built.intensities]


def found(spectra, condition: Condition, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([filter_edges(s.shifts, s.intensities)[0] for s in (degrade(s, condition, rng) for s in spectra)])


@pytest.mark.parametrize("fluorescence", [20, 5])
def test_a_cut_under_a_background_is_found_just_past_the_filter_edge(spectra, fluorescence):
    edges = found(spectra, Condition("cut", (("fluorescence", fluorescence), ("edge", "cut"))))
    assert np.isfinite(edges).mean() >= 0.85  # 1.00 / 0.98 when written
    # the protocol's cuts lie at 150-250 cm-1; the spectrum is read from CLEAR_CM1 past the steepest rise
    inside = edges[np.isfinite(edges)]
    assert ((inside >= 150 + CLEAR_CM1 - 20) & (inside <= 250 + CLEAR_CM1 + 20)).mean() >= 0.9


@pytest.mark.parametrize(
    "name",
    [
        "clean",
        "noise SNR 20",
        "noise SNR 10",
        "noise SNR 5",
        "fluorescence 20x",
        "edge hump",
        "edge cut",
        "microscope, good",
        "handheld 785 nm",
        "short acquisition",
    ],
)
def test_no_cut_is_found_where_no_background_steps_up_at_a_filter_edge(spectra, name):
    condition = next(c for c in conditions() if c.name == name)
    assert np.isfinite(found(spectra, condition)).mean() <= 0.05  # 0-3% when written


def test_an_instruments_edge_filter_is_found_where_its_dark_region_ends():
    spectra = read_one(_require(SHARED / "formats" / "renishaw" / "interrupted_acquisition.wdf"))
    edges = np.array([filter_edges(s.shifts, s.intensities)[0] for s in spectra])
    # 11 of 12 when written: the other holds what passed of the laser line, as wide as a band, in its dark part
    assert np.isfinite(edges).sum() >= 10
    for s, edge in zip(spectra, edges, strict=True):
        if np.isfinite(edge):
            assert 100 <= edge <= 160, s.source  # its filter passes light from about 95 cm-1
            below = s.intensities[s.shifts < edge - CLEAR_CM1 - 25]  # below the filter's rise
            # dark below it, the anti-Stokes side included (but for what is left of the laser line)
            assert np.percentile(np.abs(below), 95) < 0.05 * s.intensities.max()


def test_short_or_flat_spectra_have_no_edge():
    x = np.linspace(100, 1400, 1024)
    assert np.isnan(filter_edges(x, np.zeros((2, 1024)))).all()
    assert np.isnan(filter_edges(x[-8:], np.ones(8))).all()
    assert np.isnan(filter_edges(np.linspace(500, 1400, 700), np.ones(700))).all()  # measured from above any edge


def test_a_spectrum_left_too_short_past_its_edge_is_refused_saying_so():
    folder = load_bundle(Path(__file__).parents[1] / "data" / "bundles_v2" / "identifier")
    bundle = replace(folder, info=replace(folder.info, filter_edge=True))
    x = np.linspace(60, 800, 1000)  # cut at 180 cm-1 under a background: read from about 220, 45% of 100-1400
    measured = (np.exp(-(((x - 465) / 4.0) ** 2)) + 20 * (0.6 + x / 2000)) / (1 + np.exp(-(x - 180) / 8.0))
    X, kept, skipped, _ = bundle.prepare([Spectrum(x, measured, {"file": "short.txt"})])
    assert not kept and "short.txt" in skipped[0].reason
    assert re.search(
        r"covers 4\d% of the model's range .* \(read from 2[0-3]\d cm-1, past an edge filter's cut", skipped[0].reason
    )
    X, kept, _, quality = folder.prepare([Spectrum(x, measured, {"file": "short.txt"})])  # a folder from before
    assert len(kept) == 1 and quality[0].filter_edge_cm1 is None


def test_the_folder_says_whether_spectra_are_read_from_past_a_filter_edge(tmp_path):
    import json
    import shutil

    folder = tmp_path / "identifier"
    shutil.copytree(Path(__file__).parents[1] / "data" / "bundles_v2" / "identifier", folder)
    assert load_bundle(folder).info.filter_edge is False  # folders from before: read whole
    header = json.loads((folder / "bundle.json").read_text())
    header["filter_edge"] = True
    (folder / "bundle.json").write_text(json.dumps(header))
    assert load_bundle(folder).info.filter_edge is True
    header["filter_edge"] = "yes"
    (folder / "bundle.json").write_text(json.dumps(header))
    with pytest.raises(BundleError, match="'filter_edge'.*true or false"):
        load_bundle(folder)
