"""Classical models saved as model folders: trained on a real set, loaded without pickle (skops,
with a trusted-types check), answering as they did in memory, explained where they are linear."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import torch
from click.testing import CliRunner
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from starlette.testclient import TestClient

from ramanid.bundle import BundleError, load_bundle
from ramanid.bundle.header import check_header
from ramanid.cli import main
from ramanid.deploy import train_bundle
from ramanid.errors import ModelError
from ramanid.explain import integrated_gradients
from ramanid.predict import predict_prepared
from ramanid.serve import Limits, create_app
from ramanid.targets import Task
from ramanid.training.baselines import CLASSICAL, ELEMENTS_ONLY
from ramanid.training.classical import SKOPS_TENSOR, SavedClassifier, SavedElements
from ramanid.training.factory import Options

LABEL_MODELS = [name for name in CLASSICAL if name not in ELEMENTS_ONLY]


def _train(spectra, model, folder, task="label:label", log=None):
    """``ramanid train`` from Python, quietly (or into ``log``)."""
    return train_bundle(
        spectra,
        task=Task.parse(task),
        model=model,
        options=Options(),
        seed=0,
        folder=folder,
        log=log or (lambda _: None),
    )


@pytest.fixture(scope="module")
def ecoli_auto(ecoli, tmp_path_factory):
    lines = []
    bundle = _train(ecoli, "auto", tmp_path_factory.mktemp("auto"), log=lines.append)
    return bundle, lines


def test_auto_is_saved_validated_on_a_held_out_culture_and_answers_from_its_folder(ecoli, ecoli_auto):
    bundle, lines = ecoli_auto
    assert isinstance(bundle.estimator, SavedClassifier) and bundle.info.estimator == "SavedClassifier"
    assert any(line.startswith("model chosen by inner cross-validation: ") for line in lines)
    validation = bundle.info.validation
    assert validation["grouped_by"] == "group" and validation["metrics"]["accuracy"] > 0.6  # 3 classes: chance 1/3
    assert bundle.info.calibration.temperature > 0 and bundle.info.ood.score in ("library cosine", "max softmax")
    header = json.loads((bundle.path / "bundle.json").read_text())
    assert header["n_networks"] == 0 and header["params"]["model"] == "auto"
    X = ecoli.intensities[:40]
    answers = predict_prepared(bundle, X, [f"s{i}" for i in range(len(X))], top=3)
    proba = bundle.info.calibration.probabilities(bundle.estimator.decision_scores(X))
    assert [a.top[0][0] for a in answers] == list(bundle.estimator.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose([a.top[0][1] for a in answers], proba.max(axis=1), atol=1e-6)
    assert all(a.answer_set for a in answers)
    # the reloaded model answers exactly as the model that was fitted
    again = load_bundle(bundle.path)
    np.testing.assert_array_equal(again.estimator.predict_proba(X), bundle.estimator.predict_proba(X))


def test_the_validation_split_holds_out_whole_cultures(ecoli):
    model = SavedClassifier("lr", random_state=0)
    groups = ecoli.meta["group"].to_numpy()
    model.fit(ecoli.intensities, ecoli.meta["label"].to_numpy(), groups)
    val = model.validation_index_
    train = np.setdiff1d(np.arange(len(ecoli)), val)
    assert len(val) and not set(groups[val]) & set(groups[train])


@pytest.mark.parametrize("name", LABEL_MODELS)
def test_every_classical_label_model_survives_its_state(name):
    rng = np.random.default_rng(0)
    X = rng.random((90, 70))  # pca_lr keeps 50 components
    y = np.repeat(["a", "b", "c"], 30)
    X[y == "b", 5:9] += 0.8
    model = SavedClassifier(name, random_state=0).fit(X, y)
    header, tensors = model.get_state()
    json.dumps(header)  # the header is JSON
    restored = SavedClassifier.from_state(header, tensors)
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    assert SavedClassifier.check_state(header) is None


def test_a_stored_model_with_an_untrusted_type_is_refused_not_built():
    rng = np.random.default_rng(0)
    X, y = rng.random((30, 8)), np.repeat(["a", "b"], 15)
    header, tensors = SavedClassifier("lr").fit(X, y).get_state()
    hostile = make_pipeline(FunctionTransformer(os.system))
    tensors[SKOPS_TENSOR] = torch.from_numpy(np.frombuffer(sio.dumps(hostile), dtype=np.uint8).copy())
    with pytest.raises(ModelError, match="types ramanid does not trust"):
        SavedClassifier.from_state(header, tensors, source="m")
    tensors[SKOPS_TENSOR] = torch.zeros(100, dtype=torch.uint8)
    with pytest.raises(ModelError, match="cannot be read"):
        SavedClassifier.from_state(header, tensors, source="m")


@pytest.mark.parametrize("name, classes", [("lr", 3), ("lr", 2), ("pca_lr", 3), ("lr+epo", 3)])
def test_linear_models_are_explained_by_their_exact_logits(name, classes):
    rng = np.random.default_rng(1)
    X = rng.random((90, 60))
    y = np.array(list("abc"[:classes]) * 90)[:90]
    X[y == "a", 10:14] += 1.0
    groups = np.tile(["g1", "g2"], 45)
    X[groups == "g2", 30:33] += 0.5  # a group offset for +epo to remove
    model = SavedClassifier(name, val_fraction=0, random_state=0).fit(X, y, groups)
    module = model.attribution(X[:1]).module
    with torch.no_grad():
        logits = module(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(torch.softmax(torch.as_tensor(logits), 1).numpy(), model.predict_proba(X), atol=1e-4)
    spec = model.attribution(X[:1])
    attribution = integrated_gradients(spec.module, X[0].astype(np.float32), spec.output)
    with torch.no_grad():
        zero = module(torch.zeros(1, X.shape[1]))[0, spec.output].item()
    assert attribution.sum() == pytest.approx(logits[0, spec.output] - zero, abs=1e-3)
    with pytest.raises(ModelError, match="not linear"):
        SavedClassifier("knn", val_fraction=0).fit(X, y).attribution(X[:1])


def test_elements_by_a_classical_model_from_rruff(rruff_780, tmp_path):
    spectra = rruff_780.spectra
    bundle = _train(spectra, "lr", tmp_path / "m", task="elements")
    assert isinstance(bundle.estimator, SavedElements) and bundle.info.validation["grouped_by"] == "mineral"
    assert bundle.info.validation["metrics"]["macro_roc_auc"] > 0.6
    X = bundle.library[:5]
    answers = predict_prepared(bundle, X, [f"s{i}" for i in range(5)], top=3)
    proba = bundle.estimator.predict_proba(X)
    for answer, row in zip(answers, proba, strict=True):
        assert [answer.elements[e]["probability"] for e in bundle.estimator.elements_] == pytest.approx(row, abs=1e-4)
    vote = _train(spectra, "formula_vote", tmp_path / "v", task="elements")
    np.testing.assert_array_equal(load_bundle(vote.path).estimator.predict_proba(X), vote.estimator.predict_proba(X))


def test_train_and_predict_a_classical_model_from_the_command_line(ecoli, tmp_path):
    data = ecoli.save(tmp_path / "ecoli.npz")
    out = tmp_path / "lr"
    runner = CliRunner()
    result = runner.invoke(
        main, ["train", "--data", str(data), "--task", "label:label", "--model", "lr", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "validation (" in result.output and "written:" in result.output
    sample = tmp_path / "one.csv"
    np.savetxt(sample, np.column_stack([ecoli.shifts, ecoli.intensities[0]]), delimiter=",")
    answer = runner.invoke(main, ["predict", str(out), str(sample), "--format", "json"])
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.output)[0]["top"][0][0] in {"lag", "log", "stat"}
    figure = runner.invoke(main, ["explain", str(out), str(sample), "--out", str(tmp_path / "e.png")])
    assert figure.exit_code == 0 and (tmp_path / "e.png").stat().st_size > 10_000, figure.output
    np.save(tmp_path / "cube.npy", ecoli.intensities[:24].reshape(4, 6, -1))
    np.save(tmp_path / "axis.npy", ecoli.shifts)
    cube = [str(tmp_path / "cube.npy"), "--axis", str(tmp_path / "axis.npy"), "--out", str(tmp_path / "map")]
    mapped = runner.invoke(main, ["map", str(out), *cube])
    assert mapped.exit_code == 0, mapped.output
    pixels = pd.read_csv(tmp_path / "map" / "pixels.csv")
    expected = predict_prepared(load_bundle(out), ecoli.intensities[:24], [""] * 24, top=1)
    assert len(pixels) == 24 and sorted(pixels["mineral"]) == sorted(a.top[0][0] for a in expected)
    (out / "weights.safetensors").write_bytes(b"x" * 100)
    damaged = runner.invoke(main, ["predict", str(out), str(sample)])
    assert damaged.exit_code != 0 and "does not match bundle.json" in damaged.output


def test_a_folder_of_another_kind_cannot_pass_for_a_classical_one(ecoli_auto, tmp_path):
    bundle, _ = ecoli_auto
    header = json.loads((bundle.path / "bundle.json").read_text())
    header["classes"] = header["classes"][:1]
    with pytest.raises(BundleError, match="classes"):
        check_header(header, "bundle.json")


@pytest.mark.parametrize("name, attributed", [("lr", True), ("svm", False)])
def test_the_web_page_answers_for_a_classical_model(ecoli, tmp_path, name, attributed):
    bundle = _train(ecoli, name, tmp_path / name)
    rows = "".join(f"{x:.4f},{y:.6g}\n" for x, y in zip(ecoli.shifts, ecoli.intensities[200], strict=True))
    app = create_app(bundle.path, Limits(max_upload_mb=1, max_files=3, timeout_s=60))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = client.post("/api/predict?details=1", files=[("files", ("cell.csv", rows.encode()))])
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    expected = predict_prepared(bundle, ecoli.intensities[200:201], ["cell.csv"], top=5)[0]
    assert result["top"][0][0] == expected.top[0][0]
    assert result["top"][0][1] == pytest.approx(expected.top[0][1], abs=1e-3)
    assert (result["plot"]["attribution"] is not None) == attributed
