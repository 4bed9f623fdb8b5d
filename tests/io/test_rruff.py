import zipfile

import numpy as np
import pytest

from ramanid.errors import DatasetError, SpectrumFormatError
from ramanid.io.rruff import Skipped, parse_filename, parse_rruff, read_rruff, read_rruff_file
from tests.conftest import rruff_text

NAME = "Pyromorphite__R040075__Raman__780__0__unoriented__Raman_Data_Processed__12345.txt"


@pytest.mark.parametrize(
    "name, wavelength, kind",
    [
        (NAME, 780.0, "processed"),
        ("Quartz__R040031__Raman__514.5__0__unoriented__Raman_Data_RAW__1.txt", 514.5, "raw"),
        ("Quartz__R040031__Raman__458.5_nm__0__unoriented__Raman_Data_RAW__1.txt", 458.5, "raw"),
    ],
)
def test_filename_metadata(name, wavelength, kind):
    meta = parse_filename(name)
    assert meta["wavelength"] == wavelength and meta["kind"] == kind and meta["rruff_id"]


def test_blank_wavelength_is_nan():
    meta = parse_filename("Quartz__R040031__Raman____0__unoriented__Raman_Data_Processed__1.txt")
    assert np.isnan(meta["wavelength"]) and meta["angle"] == "0"


def test_other_names_give_no_metadata():
    assert parse_filename("my_spectrum.txt") == {}


def test_headers_rows_and_name():
    s = parse_rruff(rruff_text().encode(), NAME)
    assert s.meta["mineral"] == "Test" and s.meta["chemistry"] == "Pb_5_(PO_4_)_3_Cl"
    assert s.meta["wavelength"] == 780.0 and s.meta["rruff_id"] == "R000001"
    np.testing.assert_array_equal(s.shifts, [100, 200, 300])
    np.testing.assert_array_equal(s.intensities, [1, 3, 2])


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_latin1_and_utf8_headers(encoding):
    text = rruff_text().replace("Somewhere", "Minas Gerais, Brasil, São João")
    s = parse_rruff(text.encode(encoding), "x.txt")
    assert s.meta["locality"] == "Minas Gerais, Brasil, São João"


def test_html_entities_in_headers_are_decoded():
    text = rruff_text(chemistry="CaSO_4_&#183;2H_2_O").replace("Somewhere", "Mine &quot;A&quot; &amp; B")
    s = parse_rruff(text.encode(), "x.txt")
    assert s.meta["locality"] == 'Mine "A" & B' and s.meta["chemistry"] == "CaSO_4_·2H_2_O"


@pytest.mark.parametrize("newline", ["\n", "\r", "\r\n", "mixed"])
def test_line_endings(newline):
    text = rruff_text()
    if newline == "mixed":
        text = text.replace("\r\n", "\n", 3).replace("200.0, 3.0\r\n", "200.0, 3.0\r")
    else:
        text = text.replace("\r\n", "\n").replace("\n", newline)
    s = parse_rruff(text.encode(), "x.txt")
    np.testing.assert_array_equal(s.intensities, [1, 3, 2])
    assert s.meta["mineral"] == "Test"


def test_missing_chemistry_is_absent_not_an_error():
    s = parse_rruff(rruff_text(chemistry=None).encode(), "x.txt")
    assert "chemistry" not in s.meta


def test_a_non_numeric_row_is_skipped_and_counted():
    rows = "".join(f"{100 + i}, {i}\r\n" for i in range(40)) + "800, -\r\n"
    s = parse_rruff(rruff_text(rows).encode(), "x.txt")
    assert len(s.shifts) == 40 and s.meta["skipped_rows"] == 1


def test_descending_and_duplicated_shifts_are_sorted_and_averaged():
    rows = "300, 2\n200, 3\n200, 5\n100, 1\n"
    s = parse_rruff(rruff_text(rows).encode(), "x.txt")
    np.testing.assert_array_equal(s.shifts, [100, 200, 300])
    np.testing.assert_array_equal(s.intensities, [1, 4, 2])


@pytest.mark.parametrize(
    "content, message, line",
    [
        (b"", "empty", None),
        (b"   \r\n\r\n", "empty", None),
        (rruff_text(rows="").encode(), "no numeric data rows", None),
        (b"lorem ipsum dolor\nsit amet\nconsectetur\n", "not a spectrum row", 1),
        (rruff_text(rows="100, 1\n200, nan\n300, 2\n").encode(), "NaN or infinite", 7),
        (rruff_text(rows="100, 1\n200, inf\n").encode(), "NaN or infinite", 7),
        (rruff_text(rows="100, 1\n").encode(), "only 1 data point", None),
        (b"<!DOCTYPE html>\n<html><body>RRUFF</body></html>", "HTML page", 1),
        (rruff_text(rows="100, 1\n200, 2\nabc, def\nghi\njkl, 4\n").encode(), "not a spectrum row", 8),
    ],
)
def test_bad_input_names_the_file_and_line(content, message, line):
    with pytest.raises(SpectrumFormatError, match=message) as info:
        parse_rruff(content, "bad.txt")
    assert info.value.source == "bad.txt" and "bad.txt" in str(info.value)
    assert info.value.line == line


def test_a_folder_batch_reports_bad_files_and_carries_on(tmp_path):
    (tmp_path / "good.txt").write_text(rruff_text())
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "page.txt").write_text("<html><body>not found</body></html>")
    spectra, skipped = read_rruff(tmp_path, jobs=1)
    assert [s.meta["mineral"] for s in spectra] == ["Test"]
    assert sorted(s.file.rsplit("/", 1)[-1] for s in skipped) == ["empty.txt", "page.txt"]
    assert all(isinstance(s, Skipped) and s.reason for s in skipped)


def test_strict_stops_at_the_first_bad_file(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"")
    (tmp_path / "b.txt").write_text(rruff_text())
    with pytest.raises(SpectrumFormatError, match="a.txt"):
        read_rruff(tmp_path, strict=True, jobs=1)


def test_a_list_of_files_and_one_file(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"s{i}.txt")
        paths[-1].write_text(rruff_text(name=f"M{i}"))
    spectra, skipped = read_rruff(paths, jobs=2)
    assert [s.meta["mineral"] for s in spectra] == ["M0", "M1", "M2"] and not skipped
    assert read_rruff_file(paths[1]).meta["mineral"] == "M1"


def test_a_truncated_zip_is_a_clear_error(rruff_zip, tmp_path):
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(rruff_zip.read_bytes()[:200_000])
    with pytest.raises(DatasetError, match="cut.zip.*not a readable zip"):
        read_rruff(truncated)


def test_a_damaged_member_is_skipped_with_its_name(tmp_path):
    archive = tmp_path / "small.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.txt", rruff_text())
        zf.writestr("bad.txt", rruff_text(rows="".join(f"{i}, {i}\n" for i in range(2, 2000))))
    data = bytearray(archive.read_bytes())
    start = data.find(b"bad.txt", 40) + 200  # inside the second member's compressed bytes
    data[start : start + 50] = b"\x00" * 50
    archive.write_bytes(bytes(data))
    spectra, skipped = read_rruff(archive, jobs=1)
    assert len(spectra) == 1 and len(skipped) == 1 and "bad.txt" in skipped[0].file


@pytest.mark.slow
def test_the_whole_real_zip_reads(rruff_all):
    spectra, skipped = rruff_all
    assert len(spectra) == 11_080 and skipped == []
    kinds = [s.meta["kind"] for s in spectra]
    assert kinds.count("processed") == 5_584 and kinds.count("raw") == 5_496
    assert sum(np.isnan(s.meta["wavelength"]) for s in spectra) == sum("Raman____" in s.meta["file"] for s in spectra)
    assert sum("chemistry" not in s.meta for s in spectra) == 54
    lengths = [len(s.shifts) for s in spectra]
    assert min(lengths) >= 500 and max(lengths) <= 4_000
    assert all(np.all(np.diff(s.shifts) > 0) for s in spectra)
    odd = [s for s in spectra if s.meta["skipped_rows"]]
    assert [s.meta["mineral"] for s in odd] == ["Hydromagnesite"]


@pytest.mark.slow
def test_real_values_equal_a_plain_float_parse(rruff_zip, rruff_all):
    spectra, _ = rruff_all
    with zipfile.ZipFile(rruff_zip) as zf:
        for s in spectra[::1500]:
            rows = [
                line.split(",")
                for line in zf.read(s.meta["file"]).decode("utf-8").splitlines()
                if line.strip() and not line.startswith("##")
            ]
            xy = np.array([[float(a), float(b)] for a, b in rows])
            order = np.argsort(xy[:, 0], kind="stable")
            np.testing.assert_array_equal(s.shifts, xy[order, 0])
            np.testing.assert_array_equal(s.intensities, xy[order, 1])
