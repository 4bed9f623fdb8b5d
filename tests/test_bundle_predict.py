"""Saved models, predict, explain, embed and the demo, on real data and on bad bundles and spectra."""

import json
import shutil
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from ramanid.bundle import BundleError, load_bundle, save_bundle
from ramanid.chemistry import parse_elements
from ramanid.cli import main
from ramanid.datasets.covid_serum import load_covid_serum
from ramanid.deploy import train_bundle
from ramanid.explain import embedding_figure, explain_spectrum, integrated_gradients
from ramanid.models import build_model
from ramanid.predict import predict_spectra
from ramanid.spectra import SpectraSet, Spectrum
from ramanid.targets import Task
from ramanid.training.blend import NEIGHBOURS, POWERS, VOTE_SPECTRA
from ramanid.training.factory import Options, make_estimator

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
    return train_bundle(
        train,
        task=Task.parse("mineral"),
        model="ramannet",
        options=Options(epochs=3),
        seed=0,
        folder=tmp_path_factory.mktemp("model"),
        log=lambda _: None,
    )


@pytest.fixture(scope="module")
def element_bundle(rruff_780, tmp_path_factory):
    return train_bundle(
        rruff_780.spectra,
        task=Task.parse("elements"),
        model="attention_resnet",
        options=Options(epochs=2),
        seed=0,
        folder=tmp_path_factory.mktemp("elements"),
        log=lambda _: None,
    )


def _spectra_of(spectra_set):
    return [
        Spectrum(spectra_set.shifts, row, {"file": f})
        for row, f in zip(spectra_set.intensities, spectra_set.meta["file"], strict=False)
    ]


def test_round_trip_gives_the_same_predictions(bundle, split_780):
    train, _ = split_780
    again = load_bundle(bundle.path)
    X = train.intensities[:20]
    np.testing.assert_array_equal(again.estimator.predict_proba(X), bundle.estimator.predict_proba(X))
    info = json.loads((bundle.path / "bundle.json").read_text())
    assert info["preprocess"] == [["minmax", {}]] and len(info["shifts"]) == 1024 and info["ramanid_version"]
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
    flagged = {
        name: np.mean([r.unknown for r in results])
        for name, results in [("seen", seen), ("unseen", unseen), ("serum", not_minerals)]
    }
    # the threshold accepts 95% of the known validation spectra (new specimens); training spectra pass
    assert flagged["seen"] <= 0.05
    assert flagged["serum"] > 0.8 and not refused  # spectra that are not minerals are flagged
    # minerals absent from training: some are flagged, and all score as less familiar than known ones
    assert flagged["unseen"] > flagged["seen"]
    assert np.median([r.unknown_score for r in unseen]) > np.median([r.unknown_score for r in seen])
    ood = bundle.header["ood"]
    assert ood["score"] in ood["validation_auroc"] and ood["validation_unknown_spectra"] > 0


def test_spectra_outside_the_range_or_too_short_are_refused_clearly(bundle):
    rng = np.random.default_rng(0)
    far = Spectrum(np.linspace(2000, 3500, 500), rng.random(500), {"file": "far.txt"})
    short = Spectrum(np.linspace(100, 1400, 8), rng.random(8), {"file": "short.txt"})
    results, refused = predict_spectra(bundle, [far, short])
    assert results == [] and [s.file for s in refused] == ["far.txt", "short.txt"]
    assert "covers 0%" in refused[0].reason and "8 points" in refused[1].reason
    assert "its Raman shifts run 2000 to 3500 cm-1" in refused[0].reason  # what the file holds instead


def _header(folder):
    return json.loads((folder / "bundle.json").read_text())


def _edit_header(folder, **fields):
    (folder / "bundle.json").write_text(json.dumps({**_header(folder), **fields}))


def _nan_weights(folder):
    """Weights with a NaN, and bundle.json's hash updated to match: only the NaN check can catch it."""
    from safetensors.torch import load_file, save_file

    from ramanid.bundle.folder import _sha256

    tensors = load_file(str(folder / "weights.safetensors"))
    name = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, str(folder / "weights.safetensors"))
    _edit_header(
        folder, content={**_header(folder)["content"], "weights.safetensors": _sha256(folder / "weights.safetensors")}
    )


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "weights.safetensors").unlink(), "weights.safetensors is missing"),
        (lambda p: (p / "bundle.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "bundle.json").write_text("[1, 2]"), "not a ramanid model"),
        (lambda p: (p / "weights.safetensors").write_bytes(b"\x00" * 100), "does not match bundle.json"),
        (lambda p: (p / "library.npz").write_bytes(b"junk"), "does not match bundle.json"),
        (lambda p: _edit_header(p, version=99), "bundle version 99"),
        (lambda p: _edit_header(p, n_features=512), "field 'shifts'"),
        # sizes in the billions are refused before anything is allocated
        (lambda p: _edit_header(p, outputs=[3_000_000_000]), "field 'outputs'"),
        (lambda p: _edit_header(p, outputs=[1_000]), "field 'classes'"),
        (lambda p: _edit_header(p, n_features=2_000_000_000), "field 'n_features'"),
        (lambda p: _edit_header(p, n_features="1024"), "field 'n_features'"),
        (lambda p: _edit_header(p, shifts=_header(p)["shifts"][::-1]), "field 'shifts'"),
        (lambda p: _edit_header(p, params={**_header(p)["params"], "nosuch": 1}), "unknown parameters"),
        (lambda p: _edit_header(p, estimator="Pickle"), "field 'estimator'"),
        (lambda p: _edit_header(p, outputs=None), "field 'outputs'"),
        (lambda p: _edit_header(p, task=None), "field 'task'"),
        (lambda p: _edit_header(p, classes=_header(p)["classes"][:-1]), "field 'classes'"),
        (lambda p: _edit_header(p, ood={**_header(p)["ood"], "threshold": float("nan")}), "field 'ood'"),
        (lambda p: _edit_header(p, content={}), "field 'content'"),
        (_nan_weights, "NaN or infinite"),
    ],
)
def test_bad_bundles_are_clear_errors(bundle, tmp_path, damage, message):
    copy = tmp_path / "model"
    shutil.copytree(bundle.path, copy)
    damage(copy)
    with pytest.raises(BundleError, match=message):
        load_bundle(copy)


def test_a_failed_save_keeps_the_old_model_whole(bundle, tmp_path, monkeypatch):
    from ramanid.bundle import folder as folder_module

    copy = tmp_path / "model"
    shutil.copytree(bundle.path, copy)
    before = {name: (copy / name).read_bytes() for name in ("bundle.json", "weights.safetensors", "library.npz")}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folder_module.np, "savez", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_bundle(copy, bundle.estimator, {}, bundle.references)
    assert {name: (copy / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left behind
    load_bundle(copy)


def test_a_mixed_model_folder_is_refused(bundle, element_bundle, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(bundle.path, copy)
    shutil.copy(element_bundle.path / "weights.safetensors", copy / "weights.safetensors")
    with pytest.raises(BundleError, match="does not match bundle.json"):
        load_bundle(copy)


def test_model_files_are_readable_by_others(bundle):
    modes = {p.name: p.stat().st_mode & 0o777 for p in bundle.path.iterdir()}
    assert modes == {"bundle.json": 0o644, "weights.safetensors": 0o644, "library.npz": 0o644}


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
    np.savetxt(
        sample,
        np.column_stack([rruff_780.spectra.shifts, rruff_780.spectra.intensities[3]]),
        delimiter=",",
        header="shift,intensity",
        comments="",
    )
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
    assert result.exit_code == 1 and "no such model folder" in result.output


def test_demo_runs_offline(tmp_path):
    from ramanid.demo import run_demo

    figures = run_demo(tmp_path, epochs=3, per_mineral=6, log=lambda _: None)
    assert figures["unknown"][0] is True  # not_a_mineral.csv sorts first
    for name in ("synthetic.npz", "cv/report.md", "model/bundle.json", "predictions.csv", "explain.png", "embed.png"):
        assert (tmp_path / name).is_file(), name


def test_an_element_model_of_every_laser_and_kind_predicts_one_raw_file(rruff_zip, tmp_path):
    """Issue 12's user path: build a set of every wavelength, raw and processed, single specimens
    kept (here the ~700 files of minerals named B...), ``train --task elements`` on it (validated
    on whole minerals), then ``predict`` one raw file: each element's probability is listed.
    """
    folder = tmp_path / "rruff"
    with zipfile.ZipFile(rruff_zip) as archive:
        members = [m for m in archive.namelist() if m.startswith("B")]
        archive.extractall(folder, members)
    runner = CliRunner()
    data, model = tmp_path / "all.npz", tmp_path / "elements"
    build = ["build", "rruff", "--source", str(folder), "--wavelength", "all", "--kind", "all"]
    build += ["--min-per-mineral", "1", "--preprocess", "despike, arpls, minmax", "--out", str(data)]
    result = runner.invoke(main, build)
    assert result.exit_code == 0, result.output
    assert SpectraSet.load(data).meta["wavelength"].nunique() >= 3
    train = ["train", "--data", str(data), "--task", "elements", "--model", "attention_resnet", "--epochs", "1"]
    result = runner.invoke(main, [*train, "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert "macro ROC AUC" in result.output
    validation = json.loads((model / "bundle.json").read_text())["validation"]
    assert validation["grouped_by"] == "mineral"
    raw = folder / next(m for m in members if "RAW" in m and "__785__" in m)
    result = runner.invoke(main, ["predict", str(model), str(raw), "--format", "json"])
    assert result.exit_code == 0, result.output
    (answer,) = json.loads(result.stdout)
    assert list(answer["elements"]) == ["Mg", "Al", "P", "S", "Fe", "Cu"]
    assert all(0 <= e["probability"] <= 1 and isinstance(e["present"], bool) for e in answer["elements"].values())
    assert answer["nearest"] and answer["nearest"][0]["rruff_id"].startswith("R")
    # the network blended with the formula vote is saved too, and predicts the same file
    blend = tmp_path / "blend"
    result = runner.invoke(main, [*train[:-4], "--model", "mlp+vote", "--epochs", "1", "--out", str(blend)])
    assert result.exit_code == 0, result.output
    saved = json.loads((blend / "bundle.json").read_text())["blend"]
    assert 0 <= saved["weight"] <= 1 and saved["k"] in NEIGHBOURS and saved["power"] in POWERS
    assert tuple(tuple(kind) for kind in saved["spectra"]) in VOTE_SPECTRA
    assert len(saved["thresholds"]) == 6
    result = runner.invoke(main, ["predict", str(blend), str(raw), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)[0]["elements"]) == ["Mg", "Al", "P", "S", "Fe", "Cu"]


def test_a_saved_blend_predicts_what_the_fitted_one_did(rruff_780, tmp_path):
    from ramanid.holdout import macro_roc_auc
    from ramanid.training.blend import NetworkAndVote

    spectra = rruff_780.spectra.subset(np.arange(300))
    bundle = train_bundle(
        spectra,
        task=Task.parse("elements"),
        model="mlp+vote",
        options=Options(epochs=2),
        seed=0,
        folder=tmp_path / "blend",
        log=lambda _: None,
    )
    assert isinstance(bundle.estimator, NetworkAndVote) and bundle.estimator.model == "mlp+vote"
    fitted = make_estimator("mlp+vote", Task.parse("elements"), Options(epochs=2), 0)
    labelled, Y = Task.parse("elements").labelled(spectra, lambda _: None)
    X = bundle.library
    fitted.fit(X, Y, groups=labelled.meta["mineral"].astype(str).to_numpy())
    np.testing.assert_allclose(bundle.estimator.predict_proba(X), fitted.predict_proba(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bundle.estimator.thresholds_, fitted.thresholds_)
    info = json.loads((bundle.path / "bundle.json").read_text())
    honest = macro_roc_auc(Y[fitted.validation_index_], fitted.validation_scores_)  # references without them
    assert info["validation"]["metrics"]["macro_roc_auc"] == pytest.approx(honest)
    # explain shows the vote's references: the blend's nearest library spectra and their formulas
    from ramanid.explain import explain_prepared

    e = explain_prepared(bundle, X[:1], "first", "S")
    vote = bundle.estimator.vote_
    assert vote.k == bundle.estimator.k_ <= len(e.votes) <= vote.k * len(vote.votes)
    voters = vote.voters(X[0])  # under the spectra the vote compares
    assert [v["similarity"] for v in e.votes] == pytest.approx([s for _, s, _ in voters], abs=1e-4)
    assert [v["weight"] for v in e.votes] == pytest.approx([w for _, _, w in voters], abs=1e-4)
    holding = sum(share for i, _, share in voters if vote.votes[0].presence_[i, vote.elements_.index("S")])
    assert holding == pytest.approx(vote.predict_proba(X[:1])[0, vote.elements_.index("S")])
    meta = bundle.library_meta
    for v in e.votes:
        row = meta[(meta["rruff_id"] == v["rruff_id"]) & (meta["mineral"] == v["mineral"])].iloc[0]
        assert v["chemistry"] == row["chemistry"] and v["holds_target"] == ("S" in parse_elements(row["chemistry"]))
    lines = e.vote_lines(most=3)  # the three weightiest, and one line for the rest
    assert len(lines) == min(len(e.votes), 4) and "S" in lines[0] and lines[0].startswith(e.votes[0]["mineral"])
    stored = info["blend"]
    bad_spectra = ([2, 0], [0.5, -1], "sqrt", [], [[0.5, 21], [2, 0]], [[0.5, 21], 0.5])
    for bad in ({"weight": 2}, *({"spectra": spectra} for spectra in bad_spectra)):
        info["blend"] = {**stored, **bad}
        (bundle.path / "bundle.json").write_text(json.dumps(info))
        with pytest.raises(BundleError, match="field 'blend'"):
            load_bundle(bundle.path)
    info["blend"] = {**stored, "spectra": [0.5, 21]}  # a blend saved before votes were averaged: one kind
    (bundle.path / "bundle.json").write_text(json.dumps(info))
    (one,) = load_bundle(bundle.path).estimator.vote_.votes
    assert (one.intensity_power, one.derivative_window) == (0.5, 21)
    info["blend"] = {k: v for k, v in stored.items() if k != "spectra"}  # a blend saved before it chose them
    (bundle.path / "bundle.json").write_text(json.dumps(info))
    (old_vote,) = load_bundle(bundle.path).estimator.vote_.votes
    assert old_vote.similarity(X[:1]) == pytest.approx(
        bundle.estimator.reference_similarity(X[:1]), abs=1e-5
    )  # the plain cosine, as it voted then


def test_a_class_models_folder_answers_elements_with_the_element_model_it_holds(
    bundle, element_bundle, split_780, tmp_path
):
    from ramanid.predict import as_table

    folder = tmp_path / "identifier"
    shutil.copytree(bundle.path, folder)
    shutil.copytree(element_bundle.path, folder / "elements")
    both = load_bundle(folder)
    assert both.elements is not None and load_bundle(bundle.path).elements is None
    _, held = split_780
    spectra = _spectra_of(held)[:6]
    answers, _ = predict_spectra(both, spectra)
    alone, _ = predict_spectra(element_bundle, spectra)
    plain, _ = predict_spectra(bundle, spectra)
    for with_elements, element_answer, class_answer in zip(answers, alone, plain, strict=True):
        assert with_elements.top == class_answer.top  # the class answer is unchanged
        assert with_elements.elements == element_answer.elements  # the element model's own answer
        assert with_elements.formula_shares == {e: d["probability"] for e, d in class_answer.elements.items()}
    table = as_table(answers)
    assert {"Mg", "Mg_present"} <= set(table.columns) and any(c.endswith("_formula") for c in table.columns)


def test_an_element_model_on_other_inputs_or_of_another_kind_is_refused(bundle, rruff_780, tmp_path):
    folder = tmp_path / "identifier"
    shutil.copytree(bundle.path, folder)
    train_bundle(
        rruff_780.spectra,
        task=Task.parse("elements"),
        model="formula_vote",
        options=Options(preprocess="snv"),
        seed=0,
        folder=folder / "elements",
        log=lambda _: None,
    )
    with pytest.raises(BundleError, match="reads other inputs"):
        load_bundle(folder)
    shutil.rmtree(folder / "elements")
    shutil.copytree(bundle.path, folder / "elements")
    with pytest.raises(BundleError, match="is for an element model"):
        load_bundle(folder)
