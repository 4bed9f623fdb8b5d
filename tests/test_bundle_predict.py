"""Saved models, predict, explain, embed and the demo, on real data and on bad bundles and spectra."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from ramanid.bundle import BundleError, load_bundle, train_bundle
from ramanid.cli import main
from ramanid.datasets.covid_serum import load_covid_serum
from ramanid.evaluation.protocol import Options, Task
from ramanid.explain import embedding_figure, explain_spectrum, integrated_gradients
from ramanid.models import build_model
from ramanid.predict import predict_spectra
from ramanid.spectra import Spectrum

HELD_OUT = ["Quartz", "Calcite", "Fluorapatite", "Forsterite", "Almandine"]


@pytest.fixture(scope="module")
def split_780(rruff_780):
    """The 780 nm set with five common minerals held out of training."""
    spectra = rruff_780.spectra
    held = spectra.meta["mineral"].isin(HELD_OUT).to_numpy()
    return spectra.subset(~held), spectra.subset(held)


@pytest.fixture(scope="module")
def bundle(split_780, tmp_path_factory):
    train, _ = split_780
    return train_bundle(train, Task.parse("mineral"), "ramannet", Options(epochs=3), 0,
                        tmp_path_factory.mktemp("model"), log=lambda _: None)


@pytest.fixture(scope="module")
def element_bundle(rruff_780, tmp_path_factory):
    return train_bundle(rruff_780.spectra, Task.parse("elements"), "attention_resnet", Options(epochs=2), 0,
                        tmp_path_factory.mktemp("elements"), log=lambda _: None)


def _spectra_of(spectra_set):
    return [Spectrum(spectra_set.shifts, row, {"file": f}) for row, f in zip(spectra_set.intensities,
                                                                            spectra_set.meta["file"])]


def test_round_trip_gives_the_same_predictions(bundle, split_780):
    train, _ = split_780
    again = load_bundle(bundle.path)
    X = train.intensities[:20]
    np.testing.assert_array_equal(again.estimator.predict_proba(X), bundle.estimator.predict_proba(X))
    info = json.loads((bundle.path / "bundle.json").read_text())
    assert info["preprocess"] == "minmax" and len(info["shifts"]) == 1024 and info["ramanid_version"]
    assert info["validation"]["n_spectra"] > 0 and 0 < info["ood"]["threshold"] < 1


def test_predict_reports_top_k_nearest_and_flags(bundle, split_780):
    train, held = split_780
    results, refused = predict_spectra(bundle, _spectra_of(train.subset(range(0, 300, 30))), top=5)
    assert not refused and all(len(r.top) == 5 and len(r.nearest) == 3 for r in results)
    assert all(r.nearest[0]["rruff_id"] for r in results)
    assert all(r.nearest[0]["similarity"] > 0.999 for r in results)  # a training spectrum finds itself


def test_unknown_flag_on_held_out_minerals_and_on_serum(bundle, split_780, covid_dir):
    train, held = split_780
    seen, _ = predict_spectra(bundle, _spectra_of(train))
    unseen, _ = predict_spectra(bundle, _spectra_of(held))
    serum = load_covid_serum(covid_dir)
    not_minerals, refused = predict_spectra(bundle, _spectra_of(serum.subset(range(0, 465, 5))))
    flagged = {name: np.mean([r.unknown for r in results])
               for name, results in [("seen", seen), ("unseen", unseen), ("serum", not_minerals)]}
    print(flagged)
    assert flagged["seen"] < 0.05  # calibrated: about 2% of validation spectra fall below the thresholds
    assert flagged["serum"] > 0.8 and not refused  # spectra that are not minerals are flagged
    # unseen minerals resemble known ones (most have relatives in training): the flag rarely fires for
    # them (a known limitation), but their best match is clearly worse than a validation spectrum's
    unseen_similarity = np.median([r.similarity for r in unseen])
    assert unseen_similarity < bundle.info["ood"]["validation_similarity"]["median"] - 0.02


def test_spectra_outside_the_range_or_too_short_are_refused_clearly(bundle):
    far = Spectrum(np.linspace(2000, 3500, 500), np.random.rand(500), {"file": "far.txt"})
    short = Spectrum(np.linspace(100, 1400, 8), np.random.rand(8), {"file": "short.txt"})
    results, refused = predict_spectra(bundle, [far, short])
    assert results == [] and [s.file for s in refused] == ["far.txt", "short.txt"]
    assert "covers 0%" in refused[0].reason and "8 points" in refused[1].reason


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / "weights.safetensors").unlink(), "weights.safetensors is missing"),
    (lambda p: (p / "bundle.json").write_text("{not json"), "not valid JSON"),
    (lambda p: (p / "weights.safetensors").write_bytes(b"\x00" * 100), "damaged weights"),
    (lambda p: (p / "library.npz").write_bytes(b"junk"), "damaged reference library"),
    (lambda p: (p / "bundle.json").write_text(json.dumps({**json.loads((p / "bundle.json").read_text()), "version": 99})),
     "bundle version 99"),
    (lambda p: (p / "bundle.json").write_text(json.dumps({**json.loads((p / "bundle.json").read_text()),
                                                           "n_features": 512})), "do not fit"),
])
def test_bad_bundles_are_clear_errors(bundle, tmp_path, damage, message):
    copy = tmp_path / "model"
    shutil.copytree(bundle.path, copy)
    damage(copy)
    with pytest.raises(BundleError, match=message):
        load_bundle(copy)


def test_missing_bundle(tmp_path):
    with pytest.raises(BundleError, match="no such model folder"):
        load_bundle(tmp_path / "nothing")


def test_integrated_gradients_complete():
    model = build_model("mlp", 64, 3).eval()
    x = np.random.default_rng(0).normal(size=64).astype(np.float32)
    attribution = integrated_gradients(model, x, 1, steps=256)
    import torch

    with torch.no_grad():
        gap = (model(torch.as_tensor(x)[None])[0, 1] - model(torch.zeros(1, 64))[0, 1]).item()
    assert abs(attribution.sum() - gap) < 0.02 * max(1, abs(gap))


def test_explain_and_embed_figures(bundle, element_bundle, split_780, tmp_path):
    train, _ = split_780
    spectrum = _spectra_of(train.subset([0]))[0]
    target, path = explain_spectrum(bundle, spectrum, tmp_path / "explain.png")
    assert path.stat().st_size > 10_000 and target in bundle.estimator.classes_
    target, _ = explain_spectrum(element_bundle, spectrum, tmp_path / "element.png", target="Fe")
    assert target == "Fe"
    scores, path = embedding_figure(bundle, train, tmp_path / "embed.png")
    assert path.stat().st_size > 10_000 and len(scores) == 2


def test_cli_train_predict_explain(rruff_780, rruff_zip, tmp_path):
    data = rruff_780.spectra.save(tmp_path / "r780.npz")
    runner = CliRunner()
    model = tmp_path / "model"
    result = runner.invoke(main, ["train", "--data", str(data), "--model", "mlp", "--epochs", "2", "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert "validation" in result.output
    sample = tmp_path / "sample.csv"
    np.savetxt(sample, np.column_stack([rruff_780.spectra.shifts, rruff_780.spectra.intensities[3]]), delimiter=",",
               header="shift,intensity", comments="")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = runner.invoke(main, ["predict", str(model), str(sample), str(empty), "--format", "json", "--top", "3"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)
    assert len(answers) == 1 and len(answers[0]["top"]) == 3
    assert "empty.txt" in result.stderr and "empty" in result.stderr
    result = runner.invoke(main, ["predict", str(model), str(sample), "--format", "csv"])
    assert result.exit_code == 0 and result.output.startswith("file,unknown,similarity,top1")
    result = runner.invoke(main, ["explain", str(model), str(sample), "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["predict", str(tmp_path / "nope"), str(sample)])
    assert result.exit_code == 2 and "no such model folder" in result.output


def test_demo_runs_offline(tmp_path):
    from ramanid.demo import run_demo

    figures = run_demo(tmp_path, epochs=3, per_mineral=6, log=lambda _: None)
    assert figures["unknown"][0] is True  # not_a_mineral.csv sorts first
    for name in ("synthetic.npz", "cv/report.md", "model/bundle.json", "predictions.csv", "explain.png", "embed.png"):
        assert (tmp_path / name).is_file(), name
