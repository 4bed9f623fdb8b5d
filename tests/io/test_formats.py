"""Instrument files: every file in ../shared/data/formats is read as the format's own package
reads it, or refused in one line naming its format and what is missing."""

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ramanid.cli import main
from ramanid.errors import SpectrumFormatError
from ramanid.io.files import describe_file, read_blocks, read_one, read_spectrum_files, sniff
from tests.conftest import SHARED

FORMATS = SHARED / "formats"

#: every shared file that is read: its format, and how many spectra it holds
READ = {
    "wire/sp.wdf": ("Renishaw WiRE .wdf", 1),
    "wire/line.wdf": ("Renishaw WiRE .wdf", 235),
    "wire/depth.wdf": ("Renishaw WiRE .wdf", 40),
    "wire/Streamline.wdf": ("Renishaw WiRE .wdf", 49 * 45),
    "renishaw/renishaw_test_spectrum.wdf": ("Renishaw WiRE .wdf", 1),
    "renishaw/renishaw_test_map.wdf": ("Renishaw WiRE .wdf", 9),
    "renishaw/renishaw_test_map2.wdf": ("Renishaw WiRE .wdf", 400),
    "renishaw/renishaw_test_linescan.wdf": ("Renishaw WiRE .wdf", 5),
    "renishaw/renishaw_test_timeseries.wdf": ("Renishaw WiRE .wdf", 3),
    "renishaw/interrupted_acquisition.wdf": ("Renishaw WiRE .wdf", 12),
    "jobinyvon/jobinyvon_test_spec.xml": ("Horiba LabSpec XML", 1),
    "jobinyvon/jobinyvon_test_spec_3s_cm-1.xml": ("Horiba LabSpec XML", 1),
    "jobinyvon/jobinyvon_test_spec_3s_abs-cm-1.xml": ("Horiba LabSpec XML", 1),
    "jobinyvon/jobinyvon_test_spec_3s_eV.xml": ("Horiba LabSpec XML", 1),
    "jobinyvon/jobinyvon_test_map_x3-y2.xml": ("Horiba LabSpec XML", 6),
    "jobinyvon/jobinyvon_test_linescan.xml": ("Horiba LabSpec XML", 3),
    "labspec/532nm-191216-Si_200mu.txt": ("Horiba LabSpec text", 1),
    "labspec/LiNbWO6-0-H.txt": ("Horiba LabSpec text", 1),
    "labspec/LiNbWO6-45-V.txt": ("Horiba LabSpec text", 1),
    "labspec/SMC1-Initial_RT.txt": ("Horiba LabSpec text", 1),
    "labspec/lasertest1.txt": ("Horiba LabSpec text", 3),
    "labspec/serie190214-1.txt": ("Horiba LabSpec text", 168),
    "spc/RAMAN.SPC": ("Galactic SPC", 1),
    "openspecy/raman_hdpe.csv": ("delimited text", 1),
    "openspecy/raman_hdpe_os.csv": ("wide CSV (shifts as column titles)", 1),
}
#: every shared file that is refused, and what its one line must say
REFUSED = {
    "wire/undefined.wdf": "Renishaw WiRE .wdf whose x axis is Unknown",
    "renishaw/renishaw_test_undefined.wdf": "Renishaw WiRE .wdf whose x axis is Unknown",
    "trivista/map.tvf": "absolute wavelength .nm. and the file does not say the laser wavelength: give it with --laser",
    "trivista/spec_1s_1acc_1frame_average.tvf": "does not say the laser wavelength",
    "spc/4d_map.spc": "Galactic SPC of log.1/R.*infrared",
    "spc/POLYS.SPC": "Galactic SPC of absorbance.*infrared",
    "spc/TOLUENE.SPC": "Galactic SPC of absorbance.*infrared",
    "spc/SPECTRUM_WITH_BAD_BASELINE.SPC": "Galactic SPC of absorbance .XNMETR",
    "spc/m_evenz.spc": "Galactic SPC of absorbance",
    "spc/DEMO_3D.SPC": "Galactic SPC in the old .before 1996. layout",
    "spc/RUBY18.SPC": "Galactic SPC whose x axis is XARB",
    "spc/m_xyxy.spc": "Galactic SPC whose x axis is XMUNITS",
    "opus/test.0000": "Bruker OPUS infrared file .*Absorbance",
    "opus/background.0": "Bruker OPUS infrared file",
    "openspecy/ftir_ps.0": "Bruker OPUS infrared file .*Absorbance",
    "opus/not_opus.spa": "Thermo OMNIC .spa",
    "openspecy/ftir_polyethylene_reflectance_adjustment_not_working.spa": "Thermo OMNIC .spa",
    "openspecy/fitr_nitrocellulose.jdx": "JCAMP-DX of DATA TYPE=INFRARED SPECTRUM",
}


@pytest.fixture(scope="module")
def formats() -> Path:
    from tests.conftest import _require

    return _require(FORMATS)


def test_every_shared_file_is_listed_here(formats):
    files = {str(p.relative_to(formats)) for p in formats.rglob("*") if p.is_file() and p.name != "README.md"}
    assert files == set(READ) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(READ))
def test_a_shared_file_is_read_with_its_format(formats, name):
    kind, count = READ[name]
    spectra = read_one(formats / name)
    assert len(spectra) == count and all(s.meta["format"] == kind for s in spectra)
    assert all(np.all(np.diff(s.shifts) > 0) and np.isfinite(s.intensities).all() for s in spectra)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_shared_file_is_refused_in_one_line_naming_its_format(formats, name):
    with pytest.raises(SpectrumFormatError) as refusal:
        read_one(formats / name)
    message = str(refusal.value)
    assert "\n" not in message and name.split("/")[-1] in message and re.search(REFUSED[name], message), message
    spectra, skipped = read_spectrum_files([formats / name])  # a batch lists it and goes on
    assert spectra == [] and skipped[0].reason == message


def _rosetta(module: str, path: Path) -> list[dict]:
    import importlib

    logging.getLogger("rsciio").setLevel(logging.ERROR)
    signals = importlib.import_module(module).file_reader(str(path))
    return [s for s in signals if np.asarray(s["data"]).dtype.kind == "f"]


def _axis(axis: dict) -> np.ndarray:
    if axis.get("axis") is not None:
        return np.asarray(axis["axis"], dtype=np.float64)
    return axis["offset"] + axis["scale"] * np.arange(axis["size"])


@pytest.mark.parametrize(
    "name, module",
    [
        ("wire/sp.wdf", "rsciio.renishaw"),
        ("wire/line.wdf", "rsciio.renishaw"),
        ("wire/depth.wdf", "rsciio.renishaw"),
        ("wire/Streamline.wdf", "rsciio.renishaw"),
        ("renishaw/renishaw_test_map.wdf", "rsciio.renishaw"),
        ("renishaw/renishaw_test_timeseries.wdf", "rsciio.renishaw"),
        ("renishaw/interrupted_acquisition.wdf", "rsciio.renishaw"),
        ("jobinyvon/jobinyvon_test_spec_3s_cm-1.xml", "rsciio.jobinyvon"),
        ("jobinyvon/jobinyvon_test_map_x3-y2.xml", "rsciio.jobinyvon"),
    ],
)
def test_rosettasciio_files_match_its_own_read(formats, name, module):
    """Spectra, axis, first and last intensities and coordinates, against rosettasciio's arrays."""
    (signal,) = _rosetta(module, formats / name)
    data = np.asarray(signal["data"], dtype=np.float64)
    rows = data.reshape(-1, data.shape[-1])
    spectral = next(a for a in signal["axes"] if not a.get("navigate"))
    x = _axis(spectral)
    order = np.argsort(x)
    spectra = read_one(formats / name)
    assert len(spectra) == len(rows)
    for s, row in ((spectra[0], rows[0]), (spectra[-1], rows[-1])):
        if spectral["units"] == "1/cm" and spectral["name"] == "Raman Shift":
            np.testing.assert_allclose(s.shifts, x[order])
        np.testing.assert_allclose(s.intensities[[0, -1]], row[order][[0, -1]], rtol=1e-6)
    navigation = [a for a in signal["axes"] if a.get("navigate")]
    for axis in navigation:
        column = {"X": "x", "Y": "y", "Z": "z", "Abs. Distance": "distance", "Time": "time"}[axis["name"]]
        values = _axis({**axis, "size": data.shape[axis["index_in_array"]]})
        assert [s.meta[column] for s in (spectra[0], spectra[-1])] == pytest.approx([values[0], values[-1]])


def test_wavelength_energy_and_absolute_axes_are_converted_with_the_files_laser(formats):
    """The four LabSpec XML exports of one measurement, in Raman shift, absolute cm-1 and eV,
    agree once converted (nm is a different measurement in the shared files)."""
    read = {
        unit: read_one(formats / f"jobinyvon/jobinyvon_test_spec_3s_{unit}.xml")[0]
        for unit in ("cm-1", "abs-cm-1", "eV")
    }
    (signal,) = _rosetta("rsciio.jobinyvon", formats / "jobinyvon/jobinyvon_test_spec_3s_abs-cm-1.xml")
    laser = signal["metadata"]["Acquisition_instrument"]["Laser"]["wavelength"]
    absolute = _axis(signal["axes"][0])
    np.testing.assert_allclose(read["abs-cm-1"].shifts, np.sort(1e7 / laser - absolute))
    np.testing.assert_allclose(read["abs-cm-1"].shifts, read["cm-1"].shifts, atol=0.1)  # both rounded
    np.testing.assert_allclose(read["eV"].shifts, read["cm-1"].shifts, atol=2.5)  # eV rounded in the export
    assert "converted to Raman shift with a laser of 632.817 nm" in read["eV"].meta["converted"]
    assert "converted" not in read["cm-1"].meta and read["cm-1"].meta["laser_nm"] == pytest.approx(632.817)


def test_trivista_is_read_with_the_users_laser(formats):
    (signal,) = _rosetta("rsciio.trivista", formats / "trivista/map.tvf")
    spectra = read_one(formats / "trivista/map.tvf", laser_nm=785.0)
    assert len(spectra) == 81 and spectra[0].meta["laser_nm"] == 785.0
    wavelength = _axis(next(a for a in signal["axes"] if not a.get("navigate")))
    np.testing.assert_allclose(spectra[0].shifts, np.sort(1e7 / 785.0 - 1e7 / wavelength))
    np.testing.assert_allclose(sorted({round(s.meta["x"], 6) for s in spectra}), -0.1 + 0.025 * np.arange(9), atol=1e-6)


def test_spc_matches_spc_io(formats):
    import io

    from spc_io import SPC

    with open(formats / "spc/RAMAN.SPC", "rb") as fh:
        (sub,) = list(SPC.from_bytes_io(io.BytesIO(fh.read())))
    x, y = np.asarray(sub.xarray), np.asarray(sub.yarray)
    (s,) = read_one(formats / "spc/RAMAN.SPC")
    order = np.argsort(x)
    np.testing.assert_allclose(s.shifts, x[order])
    np.testing.assert_allclose(s.intensities, y[order], rtol=1e-6)
    assert s.meta["reader"].startswith("spc-io")


def test_labspec_text_matches_the_numbers_in_the_file(formats):
    path = formats / "labspec/532nm-191216-Si_200mu.txt"
    table = np.loadtxt(path, comments="#", encoding="latin-1")
    (s,) = read_one(path)
    np.testing.assert_allclose(s.shifts, table[:, 0])
    np.testing.assert_allclose(s.intensities, table[:, 1])
    assert s.meta["laser_nm"] == 532 and s.meta["instrument"] == "LabRAM HR Evol" and s.meta["z"] == -0.55


def test_a_labspec_series_is_one_spectrum_per_row(formats):
    path = formats / "labspec/serie190214-1.txt"
    lines = [line for line in path.read_text(encoding="latin-1").splitlines() if not line.startswith("#")]
    axis = np.array(lines[0].split("\t")[1:], dtype=float)
    last = np.array(lines[-1].split("\t"), dtype=float)
    spectra = read_one(path)
    np.testing.assert_allclose(spectra[-1].shifts, axis)
    np.testing.assert_allclose(spectra[-1].intensities, last[1:])
    assert spectra[-1].meta["series"] == last[0] and spectra[0].meta["series"] == 0


def test_an_interrupted_acquisition_says_how_many_spectra_are_missing(formats):
    report = describe_file(formats / "renishaw/interrupted_acquisition.wdf")
    assert report["spectra"] == 12 and "(12)" in report["note"] and "(16)" in report["note"]


def test_ramanid_read_says_what_each_file_is_read_as(formats):
    runner = CliRunner()
    result = runner.invoke(main, ["read", str(formats / "wire/line.wdf"), str(formats / "opus/test.0000")])
    assert result.exit_code == 0, result.output
    read, refused = result.output.strip().splitlines()
    assert (
        "Renishaw WiRE .wdf (rosettasciio" in read and "235 spectra of 1015 points" in read and "laser 532.25" in read
    )
    assert "distance 0 to" in read and refused.endswith("ramanid identifies Raman spectra") and "refused" in refused
    answer = json.loads(
        runner.invoke(main, ["read", str(formats / "trivista"), "--laser", "785", "--format", "json"]).output
    )
    assert [a["spectra"] for a in answer] == [81, 1] and all(a["laser_nm"] == 785 for a in answer)
    assert runner.invoke(main, ["read", str(formats / "spc/POLYS.SPC")]).exit_code == 1  # nothing readable


def test_sniffing_goes_by_content_not_by_extension(formats, tmp_path):
    renamed = tmp_path / "spectrum.txt"
    renamed.write_bytes((formats / "wire/sp.wdf").read_bytes())
    assert sniff(renamed) == "wdf" and len(read_one(renamed)) == 1
    misleading = tmp_path / "data.wdf"
    misleading.write_text("100,1\n200,2\n300,3\n")
    assert sniff(misleading) == "text"
    unknown = tmp_path / "x.l6s"
    unknown.write_bytes(b"\x00\x01binary" * 100)
    with pytest.raises(SpectrumFormatError, match="Horiba LabSpec 6 binary .*export it from LabSpec as text"):
        read_one(unknown)
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(SpectrumFormatError, match="a binary file in no format ramanid reads"):
        read_one(noise)


def test_a_folder_of_vendor_files_reads_every_format(formats):
    spectra, skipped = read_spectrum_files([formats])
    assert len({s.meta["format"] for s in spectra}) == 6 and len(skipped) == len(REFUSED)
    assert len(spectra) == sum(count for _, count in READ.values())


def test_a_map_is_one_block_with_its_coordinates(formats):
    (block,) = read_blocks(formats / "wire/Streamline.wdf")
    assert block.intensities.shape == (49 * 45, 394) and block.facts["format"] == "Renishaw WiRE .wdf"
    x, y = np.asarray(block.columns["x"]), np.asarray(block.columns["y"])
    assert len(np.unique(x)) == 45 and len(np.unique(y)) == 49
    assert (block.columns["x_index"][:45] == np.arange(45)).all() and (block.columns["y_index"][:45] == 0).all()
    assert block.as_set().meta[["x", "y"]].shape == (2205, 2)
