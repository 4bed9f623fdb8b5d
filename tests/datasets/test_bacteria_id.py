"""The Bacteria-ID loader on files in the distributed layout (the real set is not in ../shared)."""

import numpy as np
import pytest
from click.testing import CliRunner

from ramanid.cli import main
from ramanid.datasets.bacteria_id import ISOLATES, load_bacteria_id
from ramanid.errors import DatasetError, SpectrumFormatError
from ramanid.evaluation.protocol import run_cv
from ramanid.spectra import SpectraSet
from ramanid.targets import Task
from ramanid.training.factory import Options


def write_parts(folder, sizes=(90, 30, 30), points=1000, seed=0):
    """Three parts of spectra of 3 isolates; the fine-tuning and test parts are shifted in intensity,
    as a new measurement session would be."""
    rng = np.random.default_rng(seed)
    centres = rng.random((3, points))
    for part, n, drift in zip(("reference", "finetune", "test"), sizes, (0.0, 0.3, 0.3), strict=True):
        y = np.arange(n) % 3
        np.save(folder / f"X_{part}.npy", centres[y] + drift + 0.05 * rng.normal(size=(n, points)))
        np.save(folder / f"y_{part}.npy", y)


def test_loads_the_three_parts_with_their_roles(tmp_path):
    write_parts(tmp_path)
    spectra = load_bacteria_id(tmp_path)
    assert len(spectra) == 150 and spectra.intensities.shape[1] == 1000
    assert spectra.meta["role"].value_counts().to_dict() == {"pretrain": 90, "finetune": 30, "test": 30}
    assert spectra.meta["label"].iloc[:3].tolist() == ISOLATES[:3] == ["C. albicans", "C. glabrata", "K. aerogenes"]
    assert spectra.shifts[0] == pytest.approx(381.98) and spectra.shifts[-1] == pytest.approx(1792.4)
    assert "published" in spectra.info["axis"]
    np.save(tmp_path / "wavenumbers.npy", np.linspace(400, 1800, 1000))
    assert load_bacteria_id(tmp_path).shifts[0] == 400


def test_missing_and_mismatched_files_are_named(tmp_path):
    write_parts(tmp_path)
    (tmp_path / "y_test.npy").unlink()
    with pytest.raises(DatasetError, match="missing y_test.npy"):
        load_bacteria_id(tmp_path)
    write_parts(tmp_path, points=900)
    with pytest.raises(SpectrumFormatError, match=r"X_reference.npy.*shape \(90, 900\) does not match 1000 shifts"):
        load_bacteria_id(tmp_path)


def test_pretrain_fine_tune_test_from_the_command_line(tmp_path):
    write_parts(tmp_path)
    out = tmp_path / "bacteria.npz"
    result = CliRunner().invoke(main, ["build", "bacteria", "--source", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "'pretrain': 90" in result.output
    spectra = SpectraSet.load(out)
    result = run_cv(
        spectra,
        task=Task("label", "label"),
        models=["mlp"],
        split="predefined:role",
        options=Options(epochs=5),
        log=lambda _: None,
    )
    record = result["models"]["mlp"]["folds"][0]
    assert (record["pretrain_size"], record["train_size"], record["test_size"]) == (90, 30, 30)
    assert "pretrain -> fine-tune -> test" in result["split"]
