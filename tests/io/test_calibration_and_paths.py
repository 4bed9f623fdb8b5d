"""Instrument calibration from a standard, and every path a user takes (predict, explain, library
add, build table, serve) reading instrument files: silicon is named Silicon, polyethylene unknown."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from ramanid.cli import main
from ramanid.errors import RamanIdError
from ramanid.io.calibration import STANDARDS, AxisCorrection, fit_correction
from ramanid.io.files import read_one
from ramanid.spectra import Spectrum
from tests.conftest import SHARED

FORMATS = SHARED / "formats"
SILICON = FORMATS / "labspec" / "532nm-191216-Si_200mu.txt"


@pytest.fixture(scope="module")
def rruff_silicon(rruff_zip):
    from ramanid.io.rruff import read_rruff

    spectra, _ = read_rruff(rruff_zip, lambda m: m.get("mineral") == "Silicon" and m.get("kind") == "processed", jobs=1)
    return spectra


@pytest.mark.parametrize("offset", [-4.2, 0.0, 3.7])
def test_silicon_gives_the_offset_of_a_shifted_rruff_spectrum(rruff_silicon, offset):
    for s in rruff_silicon:
        true = fit_correction(s, "silicon").coefficients[0]  # RRUFF's own residual offset
        shifted = Spectrum(s.shifts + offset, s.intensities, {"file": "shifted"})
        assert fit_correction(shifted, "silicon").coefficients[0] == pytest.approx(true - offset, abs=0.1)


def test_polystyrene_recovers_a_linear_distortion_of_the_axis():
    rng = np.random.default_rng(0)
    x = np.linspace(200, 3200, 3000)
    true = np.array(STANDARDS["polystyrene"])
    measured = (true - 2.0) / 1.002
    heights = rng.uniform(0.3, 1, len(true))
    y = sum(h / (1 + ((x - m) / 4) ** 2) for m, h in zip(measured, heights, strict=True)) + 0.005 * rng.normal(
        size=x.size
    )
    correction = fit_correction(Spectrum(x, y, {"file": "ps"}), "polystyrene")
    assert correction.coefficients[0] == pytest.approx(2.0, abs=0.05) and correction.coefficients[1] == pytest.approx(
        1.002, abs=2e-5
    )
    assert correction.residual_cm1 < 0.1 and len(correction.bands) == len(true)
    with pytest.raises(RamanIdError, match="no band of polystyrene found"):
        fit_correction(Spectrum(x, 0.01 * rng.normal(size=x.size), {"file": "noise"}), "polystyrene")


def test_calibrate_the_shared_silicon_file_and_apply_it(tmp_path):
    out = tmp_path / "instrument.json"
    result = CliRunner().invoke(main, ["calibrate", "--standard", "silicon", str(SILICON), "--out", str(out)])
    assert result.exit_code == 0, result.output
    correction = AxisCorrection.load(out)
    (spectrum,) = read_one(SILICON)
    measured = fit_correction(spectrum, "silicon").bands[0][1]
    assert correction.coefficients[0] == pytest.approx(520.45 - measured) and 515 < measured < 526
    corrected = correction.apply(spectrum)
    assert fit_correction(corrected, "silicon").bands[0][1] == pytest.approx(520.45, abs=0.01)
    assert corrected.meta["calibrated"].startswith("shift corrected by")
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(RamanIdError, match="not a calibration file"):
        AxisCorrection.load(tmp_path / "bad.json")


@pytest.fixture(scope="module")
def identifier(rruff_zip, tmp_path_factory):
    """A small `library build` identifier: the 532 nm RRUFF spectra, preprocessed as the command does."""
    from ramanid.cli import IDENTIFIER_PREPROCESS
    from ramanid.datasets.rruff import build_rruff
    from ramanid.deploy import train_identifier

    spectra = build_rruff(
        rruff_zip, wavelengths=[532], kind="processed", min_per_mineral=1, preprocess=IDENTIFIER_PREPROCESS
    ).spectra
    return train_identifier(
        spectra, folder=tmp_path_factory.mktemp("identifier") / "model", epochs=2, log=lambda _: None
    )


def test_silicon_is_named_and_polyethylene_is_unknown(identifier, tmp_path):
    runner = CliRunner()
    files = [str(SILICON), str(FORMATS / "openspecy" / "raman_hdpe.csv")]
    result = runner.invoke(main, ["predict", str(identifier.path), *files, "--format", "json"])
    assert result.exit_code == 0, result.output
    silicon, polyethylene = json.loads(result.stdout)
    assert silicon["top"][0][0] == "Silicon" and not silicon["unknown"]
    assert polyethylene["unknown"]
    # refused files are listed, and the readable ones answered
    result = runner.invoke(main, ["predict", str(identifier.path), str(SILICON), str(FORMATS / "opus" / "test.0000")])
    assert result.exit_code == 0 and "Silicon" in result.stdout and "Bruker OPUS infrared file" in result.stderr


def test_explain_library_add_and_serve_read_instrument_files(identifier, tmp_path):
    from starlette.testclient import TestClient

    from ramanid.serve import create_app

    runner = CliRunner()
    wdf = FORMATS / "renishaw" / "interrupted_acquisition.wdf"  # a map: -164 to 1129 cm-1
    result = runner.invoke(main, ["explain", str(identifier.path), str(wdf), "--out", str(tmp_path / "why.png")])
    assert result.exit_code == 0, result.output
    assert "holds 12 spectra: explaining the first" in result.stderr and (tmp_path / "why.png").is_file()
    model = tmp_path / "model"
    shutil.copytree(identifier.path, model)
    result = runner.invoke(main, ["library", "add", str(model), str(SILICON), "--mineral", "Silicon (lab standard)"])
    assert result.exit_code == 0, result.output
    files = [
        ("files", (p.name, p.read_bytes(), "application/octet-stream"))
        for p in (SILICON, FORMATS / "spc" / "RAMAN.SPC")
    ]
    with TestClient(create_app(model), base_url="http://127.0.0.1") as client:
        answer = client.post("/api/predict?details=1", files=files).json()
    assert [r["file"] for r in answer["results"]][0].endswith(SILICON.name)
    assert answer["results"][0]["top"][0][0] in ("Silicon", "Silicon (lab standard)")


def test_build_table_from_a_folder_of_vendor_files(tmp_path):
    folder = tmp_path / "spectra"
    folder.mkdir()
    for name in ("labspec/LiNbWO6-0-H.txt", "labspec/LiNbWO6-45-V.txt", "labspec/serie190214-1.txt"):
        shutil.copy(FORMATS / name, folder / name.split("/")[1])
    sheet = folder / "labels.csv"
    sheet.write_text("file,label\nLiNbWO6-0-H.txt,H\nLiNbWO6-45-V.txt,V\nserie190214-1.txt,series\n")
    out = tmp_path / "set.npz"
    result = CliRunner().invoke(
        main, ["build", "table", "--source", str(folder), "--labels", str(sheet), "--label", "label", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    from ramanid.spectra import SpectraSet

    spectra = SpectraSet.load(out)
    assert len(spectra) == 2 + 168 and spectra.meta["label"].value_counts().to_dict() == {"series": 168, "H": 1, "V": 1}
