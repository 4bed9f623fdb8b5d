import numpy as np
import pandas as pd
import pytest

from ramanid.errors import DatasetError
from ramanid.spectra import SpectraSet


@pytest.fixture
def small():
    meta = pd.DataFrame({"mineral": ["a", "b", "a"], "wavelength": [780.0, np.nan, 532.0], "n": [1, 2, 3]})
    return SpectraSet(np.array([1.0, 2.0]), np.arange(6).reshape(3, 2), meta)


def test_stored_as_float32(small):
    assert small.intensities.dtype == np.float32 and len(small) == 3


def test_select_and_subset(small):
    assert list(small.select(mineral="a").meta["n"]) == [1, 3]
    assert list(small.select(wavelength=[780.0, 532.0]).meta["n"]) == [1, 3]
    assert list(small.subset([2, 0]).meta["n"]) == [3, 1]
    np.testing.assert_array_equal(small.subset(np.array([False, True, False])).intensities, [[2, 3]])
    with pytest.raises(DatasetError, match="no metadata column 'colour'"):
        small.select(colour="red")


def test_concat_needs_one_grid(small):
    assert len(SpectraSet.concat([small, small])) == 6
    other = SpectraSet(np.array([1.0, 3.0]), np.zeros((1, 2)))
    with pytest.raises(DatasetError, match="different shift grids"):
        SpectraSet.concat([small, other])


def test_shape_mismatch_is_clear():
    with pytest.raises(DatasetError, match="do not match 3 shifts"):
        SpectraSet(np.arange(3.0), np.zeros((2, 4)))


def test_save_load_round_trip_is_exact(small, tmp_path):
    path = small.save(tmp_path / "set.npz")
    back = SpectraSet.load(path)
    np.testing.assert_array_equal(back.intensities, small.intensities)
    np.testing.assert_array_equal(back.shifts, small.shifts)
    pd.testing.assert_frame_equal(back.meta, small.meta)


def test_real_build_round_trip_is_exact(rruff_780, tmp_path):
    spectra = rruff_780.spectra
    back = SpectraSet.load(spectra.save(tmp_path / "r780.npz"))
    np.testing.assert_array_equal(back.intensities, spectra.intensities)
    pd.testing.assert_frame_equal(back.meta, spectra.meta)


def test_loading_a_bad_file_is_clear(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="bad.npz: not a SpectraSet"):
        SpectraSet.load(bad)
    with pytest.raises(DatasetError, match="no such file"):
        SpectraSet.load(tmp_path / "missing.npz")


def test_a_failed_save_keeps_the_old_file(small, tmp_path, monkeypatch):
    path = small.save(tmp_path / "set.npz")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError):
        small.save(path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]
