from collections import Counter

import numpy as np
import pytest

from ramanid.datasets.rruff import build_rruff
from ramanid.errors import DatasetError
from ramanid.preprocessing.grid import AutoGrid, Grid, parse_grid
from ramanid.preprocessing.resample import resample_spectrum
from tests.conftest import rruff_text


def test_default_build_is_the_element_references(rruff_780):
    spectra = rruff_780.spectra
    meta = spectra.meta
    assert spectra.intensities.shape == (907, 1024)
    assert spectra.shifts[0] == 100 and spectra.shifts[-1] == 1400
    assert set(meta["wavelength"]) == {780.0} and set(meta["kind"]) == {"processed"}
    assert min(Counter(meta["mineral"]).values()) == 2 and meta["mineral"].nunique() == 325
    assert np.allclose(spectra.intensities.min(axis=1), 0) and np.allclose(spectra.intensities.max(axis=1), 1)
    assert rruff_780.skipped == []
    assert (meta["elements"] != "").sum() == 903
    assert "907" in rruff_780.summary() and "minerals: 325" in rruff_780.summary()


def test_outside_the_measured_range_takes_the_edge_value(rruff_780):
    meta = rruff_780.spectra.meta
    row = int(np.argmin(meta["shift_max"]))
    stop = meta["shift_max"][row]
    tail = rruff_780.spectra.intensities[row, rruff_780.spectra.shifts > stop]
    assert len(tail) > 10 and np.all(tail == tail[0])
    assert meta["coverage"][row] < 1


def test_min_coverage_drops_and_reports(rruff_zip):
    result = build_rruff(rruff_zip, min_coverage=0.86)
    assert all(result.spectra.meta["coverage"] >= 0.86)
    assert result.skipped and all("covers" in s.reason for s in result.skipped)


def test_ramannet_protocol_counts(rruff_raw10):
    meta = rruff_raw10.spectra.meta
    assert len(meta) == 1061 and meta["mineral"].nunique() == 67
    assert set(meta["kind"]) == {"raw"} and meta["wavelength"].nunique() >= 3


def test_several_wavelengths_cubic_and_auto_grid(rruff_zip):
    result = build_rruff(rruff_zip, wavelengths=[780, 785], grid="auto:0.9:512", method="cubic")
    spectra = result.spectra
    assert set(spectra.meta["wavelength"]) == {780.0, 785.0}
    assert spectra.intensities.shape[1] == 512
    covered = (spectra.meta["shift_min"] <= spectra.shifts[0]) & (spectra.meta["shift_max"] >= spectra.shifts[-1])
    assert covered.mean() >= 0.8


def test_resampling_methods_agree_on_a_smooth_curve():
    x = np.linspace(0, 10, 200)
    grid = np.linspace(1, 9, 50)
    for method in ("linear", "cubic", "pchip"):
        np.testing.assert_allclose(resample_spectrum(x, np.sin(x), grid, method), np.sin(grid), atol=2e-3)


def test_grid_strings():
    assert parse_grid("100:1400:1024") == Grid(100, 1400, 1024)
    assert parse_grid("auto:0.95:512") == AutoGrid(0.95, 512)
    for bad in ("100:1400", "1400:100:10", "a:b:c", "auto:2:10"):
        with pytest.raises(DatasetError):
            g = parse_grid(bad)
            g.resolve([0], [1])


def test_a_folder_with_bad_files(tmp_path):
    for i in range(2):
        (tmp_path / f"Calcite__R0{i}__Raman__780__0__unoriented__Raman_Data_Processed__{i}.txt").write_text(
            rruff_text(chemistry="CaCO_3_", name="Calcite")
        )
    (tmp_path / "Bad__R09__Raman__780__0__unoriented__Raman_Data_Processed__9.txt").write_text("")
    result = build_rruff(tmp_path, jobs=1)
    assert len(result.spectra) == 2 and len(result.skipped) == 1
    assert "Bad__R09" in result.summary() and "empty" in result.summary()
    assert set(result.spectra.meta["elements"]) == {"C Ca O"}


def test_nothing_selected_is_a_clear_error(tmp_path):
    (tmp_path / "x.txt").write_text(rruff_text())
    with pytest.raises(DatasetError, match="no processed spectra at \\[780.0\\] nm"):
        build_rruff(tmp_path, jobs=1)
