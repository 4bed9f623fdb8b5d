"""Text as real software writes it: separators, decimal commas against thousands separators,
quoted numbers, encodings, header blocks of any length, several spectra per file, axis units
and column orders; and JCAMP-DX in every compression."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ramanid.errors import SpectrumFormatError
from ramanid.io.delimited import read_table
from ramanid.io.files import read_one
from ramanid.io.text import decode
from ramanid.io.textfiles import read_text_spectra

SEPARATORS = {"tab": "\t", "semicolon": ";", "comma": ",", "space": " "}


def _format(value: float, decimal: str, thousands: bool, quoted: bool) -> str:
    text = f"{value:,.3f}" if thousands else f"{value:.3f}"
    if decimal == ",":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return f'"{text}"' if quoted else text


@st.composite
def dialects(draw):
    sep = draw(st.sampled_from(list(SEPARATORS.values())))
    decimal = draw(st.sampled_from([".", ","])) if sep != "," else "."
    quoted = draw(st.booleans()) if sep in (",", ";") else False
    # thousands separators only where a reader can tell them: quoted, or beside the other decimal mark
    thousands = draw(st.booleans()) and (quoted or sep != ",") and sep != " "
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "latin-1"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    header = draw(st.integers(0, 25))
    titles = draw(st.booleans())
    return sep, decimal, quoted, thousands, encoding, newline, header, titles


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dialect=dialects(),
    n=st.integers(5, 60),
    start=st.floats(100, 1500),
    step=st.floats(0.5, 5),
    seed=st.integers(0, 10**6),
)
def test_a_spectrum_written_in_any_dialect_reads_back_the_same(dialect, n, start, step, seed):
    sep, decimal, quoted, thousands, encoding, newline, header, titles = dialect
    rng = np.random.default_rng(seed)
    shifts = np.round(start + step * np.arange(n), 3)
    intensities = np.round(rng.uniform(0, 5000, n), 3)
    lines = [f"#Comment {i}=value {i}" for i in range(header)]
    if titles:
        lines.append(sep.join(["Raman Shift (cm-1)", "Intensity"]))
    lines += [
        sep.join(_format(v, decimal, thousands and v >= 1000, quoted) for v in (x, y))
        for x, y in zip(shifts, intensities, strict=True)
    ]
    data = newline.join(lines).encode(encoding)
    (spectrum,) = read_text_spectra(decode(data), "written.txt")
    np.testing.assert_allclose(spectrum.shifts, shifts, atol=1e-9)
    np.testing.assert_allclose(spectrum.intensities, intensities, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(value=st.integers(1000, 999_999), decimals=st.integers(1, 2))
def test_a_decimal_comma_is_told_from_a_thousands_separator(value, decimals):
    number = value / 10**decimals
    european = f"{number:,.{decimals}f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    # 1.085,3 (points for thousands, comma for decimals) beside a plain decimal-comma value
    table = read_table(f"{european};1,5\n{european};2,5\n", "x")
    np.testing.assert_allclose(table.values[:, 0], number)
    assert table.values[0, 1] == 1.5 and "decimal comma" in table.dialect


def test_european_decimals_are_read_as_numbers_not_split():
    """`131,7538;0,0000` is one shift and one intensity, never 131 and 7538."""
    (s,) = read_text_spectra("131,7538;0,0000\n132,1022;4,5\n133,05;9\n", "eu.csv")
    np.testing.assert_allclose(s.shifts, [131.7538, 132.1022, 133.05])
    np.testing.assert_allclose(s.intensities, [0, 4.5, 9])


@pytest.mark.parametrize(
    "text, message",
    [
        ('"1,085","2,520"\n"1,090","2,600"\n"1,095","2,700"\n', "could be 1085 or 1.085"),
        ("100,5;3\n101.5;4\n102,5;5\n", "mixes decimal commas .*and decimal points"),
        ("100,5\n101,6\nbroken row\n102,7\n103,8\n", "line 3: not a row of the table"),
        ("0\t10\n1\t12\n2\t13\n3\t15\n", "pixel numbers or a Raman shift\\? add a title row"),
        ("Wavenumber,Absorbance\n400,0.1\n401,0.2\n402,0.3\n", "infrared or UV-Vis"),
        ("a,b\nc,d\n", "no numeric data rows"),
    ],
)
def test_an_ambiguous_or_broken_table_is_refused_with_the_reason(text, message):
    with pytest.raises(SpectrumFormatError, match=message):
        read_text_spectra(text, "t.csv")


def test_several_intensity_columns_are_one_spectrum_each_named_by_their_title():
    text = "Raman shift\tsample A\tsample B\n100\t1\t4\n200\t2\t5\n300\t3\t6\n"
    a, b = read_text_spectra(text, "two.txt")
    assert (a.source, b.source) == ("two.txt[sample A]", "two.txt[sample B]")
    np.testing.assert_allclose(b.intensities, [4, 5, 6])


def test_index_shift_intensity_uses_the_shift_not_the_index():
    (s,) = read_text_spectra("index,shift,intensity\n0,150.5,3\n1,152.5,4\n2,154.5,5\n3,156.5,7\n", "i.csv")
    np.testing.assert_allclose(s.shifts, [150.5, 152.5, 154.5, 156.5])
    np.testing.assert_allclose(s.intensities, [3, 4, 5, 7])
    (s,) = read_text_spectra("0\t150.5\t3\n1\t152.5\t4\n2\t154.5\t5\n3\t156.5\t7\n", "i.txt")  # no titles
    np.testing.assert_allclose(s.shifts, [150.5, 152.5, 154.5, 156.5])


def test_intensities_first_then_the_axis():
    (s,) = read_text_spectra("5.1\t100.0\n7.3\t101.5\n2.2\t103.0\n9.9\t104.5\n", "yx.txt")
    np.testing.assert_allclose(s.shifts, [100, 101.5, 103, 104.5])
    np.testing.assert_allclose(s.intensities, [5.1, 7.3, 2.2, 9.9])


def test_a_wavelength_axis_needs_the_laser_and_is_converted_with_it():
    text = "Wavelength (nm)\tIntensity\n540\t1\n545\t2\n550\t3\n"
    with pytest.raises(SpectrumFormatError, match="absolute wavelength .nm. and the file does not say"):
        read_text_spectra(text, "nm.txt")
    (s,) = read_text_spectra(text, "nm.txt", laser_nm=532.0)
    np.testing.assert_allclose(s.shifts, 1e7 / 532 - 1e7 / np.array([540, 545, 550]))
    (s,) = read_text_spectra("#Laser wavelength=532 nm\n" + text, "nm.txt")  # the file's own laser
    assert s.meta["laser_nm"] == 532 and "converted" in s.meta


def test_an_absolute_wavenumber_axis_is_converted():
    absolute = 1e7 / 785 - np.array([200.0, 400.0, 600.0])
    text = "".join(f"{v:.4f},{i}\n" for i, v in enumerate(absolute, 1))
    (s,) = read_text_spectra(text, "abs.csv", laser_nm=785)
    np.testing.assert_allclose(s.shifts, [200, 400, 600], atol=1e-3)


def _bwspec(shift_column: bool) -> str:
    """A B&W Tek BWSpec export as the issue describes it: decimal commas, a key;value header."""
    a = [532.5, 0.075, -1.2e-6, 0.0]
    lines = [
        "File Version;BWSpec4.03_23",
        "Date;2024-05-02 10:11:12",
        "laser_wavelength;532,02",
        *[f"coefs_a{k};{str(v).replace('.', ',')}" for k, v in enumerate(a)],
        "intigration times(ms);1000",
        "Pixel;Wavelength;Wavenumber;Raman Shift;Dark;Reference;Raw data #1;Dark Subtracted #1;",
    ]
    for p in range(400):
        wavelength = a[0] + a[1] * p + a[2] * p**2
        shift = 1e7 / 532.02 - 1e7 / wavelength
        raw, dark = 1000 + 500 * np.exp(-(((shift - 520) / 5) ** 2)), 100
        comma = [f"{v:.2f}".replace(".", ",") for v in (shift, raw, raw - dark)]
        cells = [str(p), "", "", comma[0] if shift_column else "", str(dark), "", comma[1], comma[2]]
        lines.append(";".join(cells) + ";")
    return "\r\n".join(lines)


@pytest.mark.parametrize("shift_column", [True, False])
def test_bwspec_reads_the_shift_column_or_its_pixel_calibration(shift_column):
    (s,) = read_text_spectra(_bwspec(shift_column), "bwtek.txt")
    assert s.meta["format"] == "B&W Tek BWSpec text" and s.meta["laser_nm"] == pytest.approx(532.02)
    assert s.meta["column"] == "Dark Subtracted #1" and s.shifts[np.argmax(s.intensities)] == pytest.approx(520, abs=1)
    assert s.intensities.max() == pytest.approx(1400, abs=1)  # the dark-subtracted signal: not raw (1500), not dark
    if not shift_column:
        assert "converted to Raman shift with a laser of 532.02 nm" in s.meta["converted"]


def test_utf16_files_from_windows_software_are_read(tmp_path):
    text = "Raman Shift\tIntensity\r\n" + "".join(f"{100 + i}\t{i * 2}\r\n" for i in range(10))
    for encoding in ("utf-16", "utf-16-le"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes(text.encode(encoding))
        (s,) = read_one(path)
        np.testing.assert_allclose(s.shifts, 100 + np.arange(10))


JCAMP = (
    "##TITLE=test\n##JCAMP-DX=4.24\n##DATA TYPE=RAMAN SPECTRUM\n##XUNITS=1/CM\n##YUNITS=ARBITRARY UNITS\n"
    "##XFACTOR=1\n##YFACTOR=1\n##FIRSTX=100\n##LASTX=104\n##NPOINTS=5\n##DELTAX=1\n##XYDATA=(X++(Y..Y))\n"
)


@pytest.mark.parametrize(
    "form, rows",
    [
        ("AFFN", "100 10 20 30\n103 40 50\n"),
        ("PAC", "100+10+20+30\n103+40+50\n"),
        ("SQZ", "100A0B0C0\n103D0E0\n"),
        ("DIF", "100A0J0J0\n102C0J0J0\n"),
        ("DUP", "100A0J0T\n102C0J0J0\n"),
    ],
)
def test_jcamp_in_every_compression(tmp_path, form, rows):
    path = tmp_path / f"{form}.jdx"
    path.write_text(JCAMP + rows + "##END=\n")
    (s,) = read_one(path)
    np.testing.assert_allclose(s.shifts, [100, 101, 102, 103, 104])
    np.testing.assert_allclose(s.intensities, [10, 20, 30, 40, 50])
    assert s.meta["format"] == "JCAMP-DX"


def test_a_compressed_jcamp_file_is_not_read_as_rruff_text(tmp_path):
    path = tmp_path / "ir.jdx"
    path.write_text(JCAMP.replace("RAMAN SPECTRUM", "INFRARED SPECTRUM") + "100A0B0C0\n103D0E0\n##END=\n")
    with pytest.raises(SpectrumFormatError, match="JCAMP-DX of DATA TYPE=INFRARED SPECTRUM"):
        read_one(path)


@settings(max_examples=300, deadline=None)
@given(
    cells=st.lists(
        st.sampled_from(["12.5", "-3", ".5", "1e3", "1,5", "1,085", "nan", "", "a", '"2.5"', " 7 ", "\t8", "9\t"]),
        min_size=1,
        max_size=5,
    ),
    sep=st.sampled_from(list(SEPARATORS.values())),
)
def test_rows_counted_at_once_count_as_field_by_field(cells, sep):
    from ramanid.io.delimited import SEPARATORS as READER_SEPARATORS
    from ramanid.io.delimited import _data_fields, _line_fields

    line = (" " if sep == " " else sep).join(cells)
    for reader_sep in READER_SEPARATORS:
        assert _line_fields([line], reader_sep)[0] == [_data_fields(line, reader_sep)]
