import numpy as np
from scipy.signal import find_peaks

from ramanid.chemistry import parse_elements
from ramanid.datasets.synthetic import band_table, synthetic_spectra
from ramanid.io.rruff import read_rruff
from ramanid.preprocessing.resample import resample_spectrum


def test_table_has_thirty_minerals_with_readable_formulas():
    table = band_table()
    assert len(table) >= 30 and table["mineral"].is_unique
    assert all(parse_elements(f) for f in table["chemistry"])
    assert all(len(b) == len(i) for b, i in zip(table["bands"], table["intensities"], strict=False))


def test_strongest_band_of_each_mineral_is_a_real_rruff_peak(rruff_zip):
    """The shipped positions agree with the real RRUFF spectra of the same minerals (within 8 cm-1)."""
    table = band_table()
    names = set(table["mineral"])
    spectra, _ = read_rruff(rruff_zip, lambda m: m.get("mineral") in names and m.get("kind") == "processed")
    grid = np.arange(100, 1400, 1.0)
    checked = 0
    for row in table.itertuples():
        mine = [s for s in spectra if s.meta["mineral"] == row.mineral]
        if not mine:
            continue
        curves = np.array([resample_spectrum(s.shifts, s.intensities, grid) for s in mine])
        mean = (curves / curves.max(axis=1, keepdims=True)).mean(axis=0)
        peaks, _ = find_peaks(mean, prominence=0.05)
        strongest = row.bands[np.argmax(row.intensities)]
        assert np.min(np.abs(grid[peaks] - strongest)) <= 8, row.mineral
        checked += 1
    assert checked >= 30


def test_synthetic_spectra_are_reproducible_and_labelled():
    a = synthetic_spectra(3, random_state=1)
    b = synthetic_spectra(3, random_state=1)
    np.testing.assert_array_equal(a.intensities, b.intensities)
    assert len(a) == 3 * len(band_table()) and set(a.meta["elements"].iloc[:3]) == {"O Si"}
    calcite = a.select(mineral="Calcite").intensities[0]
    assert abs(a.shifts[np.argmax(calcite)] - 1086) < 10 or calcite.max() > 3 * np.median(calcite)
