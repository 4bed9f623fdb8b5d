"""A user's own data: every import form of `ramanid build table`, its bad inputs, and preprocessing
inside cross-validation, on the real E. coli set and on small files."""

import gzip
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ramanid.cli import main
from ramanid.datasets.table import build_table
from ramanid.errors import DatasetError
from ramanid.evaluation.protocol import run_cv
from ramanid.spectra import SpectraSet
from ramanid.training.factory import Options
from ramanid.training.selection import choose_preprocessing


def test_the_real_ecoli_csv(ecoli):
    assert len(ecoli) == 536 and len(ecoli.shifts) == 333 and ecoli.shifts[0] == pytest.approx(600.7745)
    assert ecoli.meta["label"].value_counts().to_dict() == {"lag": 183, "log": 177, "stat": 176}
    assert sorted(ecoli.meta["group"].unique()) == ["rep1", "rep2", "rep3"]


def test_a_folder_with_a_labels_sheet_on_different_axes(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        axis = np.linspace(200 + 3 * i, 1200 - 5 * i, 300 + 10 * i)  # every file its own axis
        np.savetxt(tmp_path / f"s{i}.txt", np.column_stack([axis, rng.random(len(axis))]))
        rows.append({"file": f"s{i}.txt", "condition": "ab"[i % 2], "patient": f"p{i // 2}"})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    spectra = build_table(tmp_path, label="condition", group="patient", labels=tmp_path / "labels.csv")
    assert len(spectra) == 6 and spectra.shifts[0] >= 215 and spectra.shifts[-1] <= 1175
    assert list(spectra.meta["label"]) == list("ababab") and spectra.meta["coverage"].min() == 1.0


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda d: (d / "labels.csv").write_text("file,condition\ns0.txt,a\ns0.txt,b\ns1.txt,a\n"),
            "line 3: 's0.txt' appears twice",
        ),
        (
            lambda d: (d / "labels.csv").write_text("file,condition\ns0.txt,a\ns1.txt,a\nnope.txt,b\n"),
            "line 4: no file 'nope.txt'",
        ),
        (lambda d: (d / "labels.csv").write_text("file,condition\ns0.txt,a\n"), "no row for \\['s1.txt'\\]"),
        (lambda d: (d / "labels.csv").write_text("file,condition\ns0.txt,a\ns1.txt,\n"), "row 2 has no 'condition'"),
        (lambda d: (d / "labels.csv").write_text("name,condition\ns0.txt,a\n"), "expected a 'file' column"),
    ],
)
def test_bad_labels_sheets_name_the_row(tmp_path, damage, message):
    for i in range(2):
        np.savetxt(tmp_path / f"s{i}.txt", np.column_stack([np.linspace(100, 900, 50), np.ones(50)]))
    damage(tmp_path)
    with pytest.raises(DatasetError, match=message):
        build_table(tmp_path, label="condition", labels=tmp_path / "labels.csv")


def test_npy_with_an_axis_and_the_command(tmp_path):
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((10, 40)))
    np.save(tmp_path / "axis.npy", np.linspace(400, 1600, 40))
    with pytest.raises(DatasetError, match="needs its shift axis"):
        build_table(tmp_path / "X.npy")
    result = CliRunner().invoke(
        main,
        [
            "build",
            "table",
            "--source",
            str(tmp_path / "X.npy"),
            "--axis",
            str(tmp_path / "axis.npy"),
            "--out",
            str(tmp_path / "set.npz"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(SpectraSet.load(tmp_path / "set.npz")) == 10


def test_a_missing_label_column_lists_the_columns(tmp_path):
    with gzip.open(tmp_path / "wide.csv.gz", "wt") as fh:
        fh.write("100,200,300,kind\n1,2,3,x\n4,5,6,y\n")
    with pytest.raises(DatasetError, match="no column 'label'.*'kind'"):
        build_table(tmp_path / "wide.csv.gz", label="label")


def test_auto_preprocessing_is_chosen_on_training_rows_only(ecoli, monkeypatch):
    from ramanid.training import selection

    seen = []
    real = selection.preprocess

    def spy(spec, X_fit, shifts, *others):
        seen.append(len(X_fit) + sum(len(o) for o in others))
        return real(spec, X_fit, shifts, *others)

    monkeypatch.setattr(selection, "preprocess", spy)
    X, y = ecoli.intensities, ecoli.meta["label"].to_numpy()
    groups = ecoli.meta["group"].to_numpy()
    train = np.flatnonzero(groups != "rep3")
    spec, scores = choose_preprocessing(X[train], y[train], ecoli.shifts, groups[train])
    assert spec in scores and set(scores) == set(selection.CANDIDATES)
    assert max(seen) == len(train)  # never more rows than the training part: rep3 is never seen


def test_inner_folds_leave_one_culture_out_when_training_has_two(ecoli):
    from ramanid.holdout import inner_splits

    groups = ecoli.meta["group"].to_numpy()
    train = np.flatnonzero(groups != "rep3")
    splits = inner_splits(ecoli.intensities[train], ecoli.meta["label"].to_numpy()[train], groups[train])
    assert sorted(tuple(set(groups[train][test])) for _, test in splits) == [("rep1",), ("rep2",)]


def test_cv_with_preprocessing_inside_the_folds_and_a_grouped_split(ecoli, tmp_path):
    result = run_cv(
        ecoli,
        task="label:label",
        models=["lr"],
        split="grouped:group",
        folds=3,
        options=Options(preprocess="auto"),
        log=lambda _: None,
    )
    folds = result["models"]["lr"]["folds"]
    assert all(f["preprocess"] in f["preprocess_scores"] for f in folds)
    assert "groups kept together (group)" in result["split"]
    data = ecoli.save(tmp_path / "ecoli.npz")
    out = tmp_path / "model"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            str(data),
            "--task",
            "label:label",
            "--model",
            "mlp",
            "--epochs",
            "3",
            "--preprocess",
            "snv",
            "--tune",
            "lr=0.01,0.001",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    info = json.loads((out / "bundle.json").read_text())
    assert info["preprocess"] == [["snv", {}]] and [t["lr"] for t in info["tuned"]] == [0.01, 0.001]
    assert info["validation"]["grouped_by"] == "group"  # validated on a culture training did not see
    assert "options chosen by inner cross-validation" in result.output
    sample = tmp_path / "one.csv"
    np.savetxt(sample, np.column_stack([ecoli.shifts, ecoli.intensities[0]]), delimiter=",")
    answer = CliRunner().invoke(main, ["predict", str(out), str(sample), "--format", "json"])
    assert answer.exit_code == 0 and json.loads(answer.stdout)[0]["top"][0][0] in {"lag", "log", "stat"}
    shutil.rmtree(out)
