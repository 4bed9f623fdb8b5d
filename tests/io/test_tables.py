import json

import numpy as np
import pandas as pd
import pytest

from ramanid.errors import SpectrumFormatError
from ramanid.io.tables import read_npy, read_two_column, read_wide_csv


@pytest.mark.parametrize("sep", [",", "\t", " ", ";"])
def test_two_column_with_a_title_row(tmp_path, sep):
    path = tmp_path / "s.csv"
    path.write_text(f"shift{sep}intensity\n" + "".join(f"{x}{sep}{x * 2}\n" for x in (300, 100, 200)))
    s = read_two_column(path)
    np.testing.assert_array_equal(s.shifts, [100, 200, 300])
    np.testing.assert_array_equal(s.intensities, [200, 400, 600])


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ("a,b\nc,d\n", "no numeric data rows"),
        ("1,2\n", "only 1 data point"),
        ("1,2\n2,nan\n", "NaN"),
        ("<html><body>404</body></html>", "HTML page"),
    ],
)
def test_two_column_bad_input(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(SpectrumFormatError, match=message) as info:
        read_two_column(path)
    assert "bad.txt" in str(info.value)


def test_wide_csv_shifts_in_the_header_and_label_columns(tmp_path):
    path = tmp_path / "wide.csv"
    pd.DataFrame({"sample": ["a", "b"], "200.5": [2.0, 3.0], "100": [1.0, 4.0], "label": ["x", "y"]}).to_csv(
        path, index=False
    )
    spectra = read_wide_csv(path)
    np.testing.assert_array_equal(spectra.shifts, [100, 200.5])
    np.testing.assert_array_equal(spectra.intensities, [[1, 2], [4, 3]])
    assert list(spectra.meta["label"]) == ["x", "y"] and list(spectra.meta["sample"]) == ["a", "b"]


def test_wide_csv_with_a_bad_value_names_the_line(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("label,100,200\nx,1,2\ny,3,oops\n")
    with pytest.raises(SpectrumFormatError, match="wide.csv, line 3"):
        read_wide_csv(path)


def test_wide_csv_without_shift_columns(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SpectrumFormatError, match="Raman shifts"):
        read_wide_csv(path)


def test_npy_covid_serum(covid_dir):
    names = json.loads((covid_dir / "label.json").read_text())
    spectra = read_npy(covid_dir / "train_x.npy", covid_dir / "wavenumber.npy", covid_dir / "train_y.npy", names)
    assert spectra.intensities.shape == (372, 900) and spectra.intensities.dtype == np.float32
    assert set(spectra.meta["label"]) == {"Healthy", "Suspected", "COVID-19"}
    assert spectra.shifts[0] == 400 and spectra.shifts[-1] == 2112


def test_npy_object_arrays_are_refused_not_unpickled(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "axis.npy", np.arange(3.0))
    with pytest.raises(SpectrumFormatError, match="evil.npy"):
        read_npy(path, tmp_path / "axis.npy")


def test_npy_shape_mismatch(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 4)))
    np.save(tmp_path / "axis.npy", np.arange(3.0))
    with pytest.raises(SpectrumFormatError, match="does not match 3 shifts"):
        read_npy(tmp_path / "x.npy", tmp_path / "axis.npy")
