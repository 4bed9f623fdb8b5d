import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ramanid.cli import main
from ramanid.errors import DatasetError, ModelError
from ramanid.evaluation.metrics import aggregate, element_metrics, multiclass_metrics
from ramanid.evaluation.protocol import run_cv
from ramanid.evaluation.report import write_report
from ramanid.evaluation.splits import Split
from ramanid.spectra import SpectraSet
from ramanid.targets import Task
from ramanid.training.factory import Options, make_estimator


def toy(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(3, 32))[y] + 0.3 * rng.normal(size=(n, 32))
    meta = pd.DataFrame(
        {
            "mineral": [f"m{v}" for v in y],
            "rruff_id": [f"R{i // 4}" for i in range(n)],
            "chemistry": ["Mg_2_SiO_4_", "FeS_2_", "CuFeS_2_"] * (n // 3),
            "split": ["train"] * (n - 12) + ["test"] * 12,
        }
    )
    return SpectraSet(np.arange(32.0), X, meta)


def test_grouped_split_keeps_groups_together():
    spectra = toy()
    y = spectra.meta["mineral"].to_numpy()
    split = Split.parse("grouped:rruff_id", 3)
    for train, test in split.indices(spectra, y):
        assert not set(spectra.meta["rruff_id"][train]) & set(spectra.meta["rruff_id"][test])
    assert "groups kept together (rruff_id)" in split.describe()
    assert "NOT kept together" in Split.parse("kfold").describe()


def test_split_kinds():
    spectra = toy()
    y = spectra.meta["mineral"].to_numpy()
    assert len(Split.parse("repeated-holdout").indices(spectra, y)) == 50
    train, test = Split.parse("repeated-holdout").indices(spectra, y)[0]
    assert len(test) == 18 and len(train) == 42
    assert len(Split.parse("logo:mineral").indices(spectra, y)) == 3
    assert [len(t) for _, t in Split.parse("predefined:split").indices(spectra, y)] == [12]
    folds = Split.parse("stratified", 4).indices(spectra, y)
    assert all(np.bincount([int(v[1]) for v in y[test]]).tolist() == [5, 5, 5] for _, test in folds)
    with pytest.raises(DatasetError, match="needs a column"):
        Split.parse("grouped")


def test_multiclass_metrics_by_hand():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1], [0.2, 0.3, 0.5]])
    m = multiclass_metrics(np.array(["a", "b", "b", "c"]), proba, ["a", "b", "c"])
    assert m["accuracy"] == 0.75 and m["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert m["balanced_accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)


def test_element_metrics_by_hand():
    Y = np.array([[1], [1], [0], [0]])
    scores = np.array([[0.9], [0.4], [0.5], [0.1]])
    m = element_metrics(Y, scores, np.array([0.45]), ["Fe"])["elements"]["Fe"]
    assert m["roc_auc"] == 0.75 and m["sensitivity"] == 0.5 and m["specificity"] == 0.5
    assert m["confusion"] == [[1, 1], [1, 1]]


def test_aggregate_skips_nan():
    assert aggregate([1.0, np.nan, 3.0]) == {"mean": 2.0, "std": pytest.approx(2**0.5), "n": 2}


def test_run_cv_same_folds_for_every_model_and_resume(tmp_path):
    spectra = toy()
    logs = []
    result = run_cv(
        spectra,
        task="mineral",
        models=["lr", "mlp"],
        folds=3,
        options=Options(epochs=2),
        cache_dir=tmp_path,
        log=logs.append,
    )
    sizes = {m: [f["test_size"] for f in d["folds"]] for m, d in result["models"].items()}
    assert sizes["lr"] == sizes["mlp"] and result["models"]["lr"]["summary"]["accuracy"]["mean"] > 0.9
    again = []
    second = run_cv(
        spectra,
        task="mineral",
        models=["lr", "mlp"],
        folds=3,
        options=Options(epochs=2),
        cache_dir=tmp_path,
        log=again.append,
    )
    assert again[0] == "resuming: 6 of 6 folds already done"
    assert second["models"]["mlp"]["summary"] == result["models"]["mlp"]["summary"]


def test_elements_task_and_report(tmp_path):
    result = run_cv(toy(), task=Task.parse("elements", ["Mg", "Fe", "Cu", "S"]), models=["lr"], split="kfold", folds=3)
    assert set(result["classes"]) == {"Mg", "Fe", "Cu", "S"}
    written = write_report(result, tmp_path)
    names = {p.name for p in written}
    assert {"results.json", "results.csv", "report.md", "folds.png", "roc_curves.png"} <= names
    assert "| lr |" in (tmp_path / "report.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["split"].startswith("3-fold shuffled")


def test_parallel_folds_equal_serial():
    spectra = toy()
    serial = run_cv(spectra, models=["lr"], folds=3, n_jobs=1, log=lambda _: None)
    parallel = run_cv(spectra, models=["lr"], folds=3, n_jobs=2, log=lambda _: None)
    assert serial["models"]["lr"]["summary"] == parallel["models"]["lr"]["summary"]


def test_the_folds_of_a_last_smaller_round_share_the_cores_among_fewer():
    from ramanid.evaluation.protocol import fold_threads

    assert fold_threads(5, 2, 2) == [1, 1, 1, 1, 2]  # the fifth fold runs alone, on both cores
    assert fold_threads(4, 2, 2) == [1, 1, 1, 1]
    assert fold_threads(5, 1, 2) == [2] * 5
    assert fold_threads(2, 4, 8) == [4, 4]  # more workers than folds: the folds share the cores
    assert fold_threads(6, 4, 8) == [2, 2, 2, 2, 4, 4]
    assert fold_threads(3, 2, 1) == [1, 1, 1] and fold_threads(0, 2, 2) == []


def test_dask_local_cluster_on_loopback():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        result = run_cv(
            toy(), models=["lr"], folds=3, backend="dask", scheduler=cluster.scheduler_address, log=lambda _: None
        )
    assert result["models"]["lr"]["summary"]["accuracy"]["n"] == 3


def test_cv_command(tmp_path):
    data = toy().save(tmp_path / "toy.npz")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "cv",
            "--data",
            str(data),
            "--task",
            "mineral",
            "--model",
            "lr",
            "--model",
            "library",
            "--folds",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "confusion_lr.png").is_file() and "| library |" in result.output
    # a network that cannot take spectra this short says so in one line, without a traceback
    result = CliRunner().invoke(
        main,
        [
            "cv",
            "--data",
            str(data),
            "--model",
            "liu2017_cnn",
            "--epochs",
            "1",
            "--precision",
            "bfloat16",
            "--out",
            str(tmp_path / "cnn"),
        ],
    )
    assert result.exit_code == 1 and "liu2017_cnn: spectra of 32 points are too short" in result.output
    # a misspelt model is refused before the first fold of the others runs
    result = CliRunner().invoke(
        main, ["cv", "--data", str(data), "--model", "lr", "--model", "nosuch", "--out", str(tmp_path / "early")]
    )
    assert result.exit_code == 1 and "unknown model 'nosuch'" in result.output
    assert not (tmp_path / "early" / "folds").exists()
    # a preprocessing or training parameter that cannot work is one line, exit code 1
    result = CliRunner().invoke(
        main, ["cv", "--data", str(data), "--model", "mlp", "--precision", "half", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "Invalid value for '--precision'" in result.output  # click's usage error


def test_the_cache_is_not_reused_when_labels_change(tmp_path):
    spectra = toy()
    first = run_cv(spectra, models=["lr"], folds=3, cache_dir=tmp_path, log=lambda _: None)
    shuffled = spectra.subset(np.arange(len(spectra)))
    shuffled.meta["mineral"] = np.random.default_rng(1).permutation(shuffled.meta["mineral"].to_numpy())
    logs = []
    second = run_cv(shuffled, models=["lr"], folds=3, cache_dir=tmp_path, log=logs.append)
    assert not any(line.startswith("resuming") for line in logs)
    assert second["models"]["lr"]["summary"]["accuracy"]["mean"] < first["models"]["lr"]["summary"]["accuracy"]["mean"]


@pytest.mark.parametrize("content", [b"\x00\xff binary", b"[1, 2, 3]", b'{"key": 1, "record": [1]}'])
def test_a_damaged_cache_file_is_recomputed(tmp_path, content):
    run_cv(toy(), models=["lr"], folds=3, cache_dir=tmp_path, log=lambda _: None)
    (tmp_path / "lr__fold0.json").write_bytes(content)
    logs = []
    run_cv(toy(), models=["lr"], folds=3, cache_dir=tmp_path, log=logs.append)
    assert logs[0] == "resuming: 2 of 3 folds already done"


def test_cv_on_real_elements(rruff_780, tmp_path):
    """The reference protocol on the real 780 nm set, tiny epochs: both models run on the same folds."""
    spectra = rruff_780.spectra
    result = run_cv(
        spectra,
        task="elements",
        models=["seed_attention", "lr"],
        split="grouped:mineral",
        folds=3,
        options=Options(epochs=3),
        log=lambda _: None,
    )
    assert result["n_spectra"] == 903
    # the transductive reference is also scored one spectrum at a time, as predict scores it
    alone = result["models"]["seed_attention (one spectrum at a time)"]["summary"]["macro_roc_auc"]["mean"]
    assert alone != result["models"]["seed_attention"]["summary"]["macro_roc_auc"]["mean"]
    for model in ("seed_attention", "lr"):
        aucs = [result["models"][model]["summary"][f"{e}_roc_auc"]["mean"] for e in ("Mg", "Al", "P", "S", "Fe", "Cu")]
        assert all(0.3 < a < 1 for a in aucs)


def test_an_interrupted_run_resumes_from_the_finished_folds(tmp_path, monkeypatch):
    from ramanid.evaluation import protocol

    real, calls = protocol.run_fold, []

    def dies_on_the_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(protocol, "run_fold", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        run_cv(toy(), models=["lr"], folds=3, cache_dir=tmp_path, log=lambda _: None)
    monkeypatch.setattr(protocol, "run_fold", real)
    logs = []
    run_cv(toy(), models=["lr"], folds=3, cache_dir=tmp_path, log=logs.append)
    assert logs[0] == "resuming: 2 of 3 folds already done"


def test_predefined_split_pretrains_then_fine_tunes_on_real_rruff(rruff_raw10):
    """The Bacteria-ID protocol on RRUFF: pretrain on 514/532/785 nm, fine-tune on half the 780 nm
    specimens, test on the other half."""
    spectra = rruff_raw10.spectra
    at_780 = spectra.meta["wavelength"].to_numpy() == 780
    specimens = spectra.meta["rruff_id"].to_numpy()
    specimen_half = np.isin(specimens, sorted(set(specimens[at_780]))[::2])
    spectra.meta["role"] = np.where(~at_780, "pretrain", np.where(specimen_half, "finetune", "test"))
    split = Split.parse("predefined:role")
    assert "pretrain -> fine-tune -> test" in split.describe()
    result = run_cv(spectra, models=["mlp", "lr"], split=split, options=Options(epochs=3), log=lambda _: None)
    for name in ("mlp", "lr"):
        record = result["models"][name]["folds"][0]
        assert record["pretrain_size"] == int((~at_780).sum())
        assert record["train_size"] == int((at_780 & specimen_half).sum())
        assert record["test_size"] == int((at_780 & ~specimen_half).sum())
    assert result["models"]["lr"]["summary"]["accuracy"]["mean"] > 0.5


def test_predefined_split_names_unknown_roles():
    spectra = toy()
    spectra.meta.loc[3, "split"] = "validation"
    with pytest.raises(DatasetError, match=r"has values \['validation'\] \(rows \[3\]\)"):
        Split.parse("predefined:split").indices(spectra, spectra.meta["mineral"].to_numpy())


def test_ensemble_averages_networks_from_consecutive_seeds():
    from ramanid.errors import ModelError
    from ramanid.training.factory import make_estimator

    ensemble = make_estimator("mlp", Task.parse("mineral"), Options(epochs=2, ensemble=3), seed=5)
    assert [member.random_state for _, member in ensemble.estimators] == [5, 6, 7]
    spectra = toy()
    X, y = spectra.intensities, spectra.meta["mineral"].to_numpy()
    ensemble.fit(X, y)
    mean = np.mean([member.predict_proba(X) for member in ensemble.estimators_], axis=0)
    np.testing.assert_allclose(ensemble.predict_proba(X), mean, rtol=1e-6)
    result = run_cv(spectra, models=["mlp", "lr"], folds=3, options=Options(epochs=2, ensemble=2), log=lambda _: None)
    assert result["models"]["mlp"]["summary"]["accuracy"]["n"] == 3
    with pytest.raises(ModelError, match="ensembles are for mineral and label tasks"):
        make_estimator("mlp", Task.parse("elements"), Options(ensemble=2), seed=0)


def test_top_k_is_left_out_where_scores_are_not_graded():
    one_hot = np.eye(4)[[0, 1, 2, 3, 0]]
    m = multiclass_metrics(np.array(["a", "b", "c", "d", "b"]), one_hot, ["a", "b", "c", "d"])
    assert "top1" not in m and m["accuracy"] == 0.8
    graded = one_hot * 0.7 + 0.075
    assert "top1" in multiclass_metrics(np.array(["a", "b", "c", "d", "b"]), graded, ["a", "b", "c", "d"])


def test_the_spread_is_the_sample_standard_deviation():
    assert aggregate([0.8, 0.9, 1.0])["std"] == pytest.approx(0.1)  # ddof=1; ddof=0 gives 0.0816
    assert np.isnan(aggregate([0.5])["std"])


def test_the_positive_class_is_the_one_named():
    truth = np.array(["COVID-19", "COVID-19", "Healthy", "Healthy"])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])  # columns: COVID-19, Healthy
    default = multiclass_metrics(truth, proba, ["COVID-19", "Healthy"])
    named = multiclass_metrics(truth, proba, ["COVID-19", "Healthy"], positive="COVID-19")
    assert default["positive"] == "Healthy" and named["positive"] == "COVID-19"
    assert named["sensitivity"] == 0.5 and named["specificity"] == 1.0
    assert default["sensitivity"] == 1.0 and default["specificity"] == 0.5


def test_positive_and_repeats_from_the_command_line(tmp_path):
    spectra = toy()
    binary = spectra.subset(spectra.meta["mineral"].isin(["m0", "m1"]).to_numpy())
    data = binary.save(tmp_path / "binary.npz")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "cv",
            "--data",
            str(data),
            "--model",
            "lr",
            "--split",
            "repeated-holdout",
            "--folds",
            "4",
            "--positive",
            "m0",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "4 x random 70%/30% hold-out" in report and "positive class: m0" in report
    result = CliRunner().invoke(
        main, ["cv", "--data", str(data), "--model", "lr", "--positive", "m9", "--out", str(tmp_path / "bad")]
    )
    assert result.exit_code == 1 and "--positive 'm9'" in result.output
    assert Split.parse("repeated-holdout").folds == 50 and Split.parse("repeated-holdout", 7).folds == 7


def test_measured_chemistry_labels(tmp_path):
    spectra = toy()
    spectra.meta["measured_chemistry"] = [None, "Fe_2_O_3_", "nonsense((("] * 20
    ideal, _ = Task.parse("elements", ["Fe"]).targets(spectra)
    Y, usable = Task.parse("elements", ["Fe"], chemistry="measured").targets(spectra)
    assert usable.sum() == 20 and Y[usable].all() and Y[1, 0] == 1 and not usable[0] and not usable[2]
    assert not ideal[3::3].any()  # the ideal formula of row 3, Mg_2_SiO_4_, has no Fe
    with pytest.raises(DatasetError, match="chemistry 'guessed'"):
        Task.parse("elements", chemistry="guessed")


def test_inner_validation_is_grouped_when_the_outer_split_is(monkeypatch):
    from ramanid.training.estimators import SpectrumClassifier

    seen = []
    original = SpectrumClassifier.fit

    def spy(self, X, y, groups=None):
        seen.append(groups)
        return original(self, X, y, groups=groups)

    monkeypatch.setattr(SpectrumClassifier, "fit", spy)
    run_cv(toy(), models=["mlp"], split="grouped:rruff_id", folds=3, options=Options(epochs=1), log=lambda _: None)
    assert len(seen) == 3 and all(g is not None and len(set(g)) > 1 for g in seen)
    seen.clear()
    run_cv(toy(), models=["mlp"], split="stratified", folds=3, options=Options(epochs=1), log=lambda _: None)
    assert seen == [None, None, None]


def test_formula_vote_reads_the_nearest_references_formulas():
    from ramanid.training.baselines import FormulaVote

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 32))
    minerals = np.repeat(np.arange(4), 15)
    X = centres[minerals] + 0.05 * rng.normal(size=(60, 32))
    Y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])[minerals]  # the formulas of the four minerals
    vote = FormulaVote(elements=["Fe", "S"], k=3).fit(X, Y, groups=minerals)
    query = centres + 0.05 * rng.normal(size=(4, 32))
    np.testing.assert_allclose(vote.predict_proba(query), [[1, 0], [1, 1], [0, 1], [0, 0]], atol=1e-9)
    assert (vote.predict(query) == [[1, 0], [1, 1], [0, 1], [0, 0]]).all()


def test_the_votes_power_weights_its_neighbours_by_their_similarity():
    from ramanid.training.baselines import FormulaVote

    references = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])  # unit rows: cosine = dot product
    presence = np.array([[1], [0], [0]])
    query = np.array([[0.96, 0.28]])  # similarity 0.96 to the first, 0.936 to the second, 0.28 to the third
    for power in (1, 16):
        vote = FormulaVote(elements=["Fe"], k=3, power=power, val_fraction=0).fit(references, presence)
        weights = np.array([0.96, 0.936, 0.28]) ** power
        assert vote.predict_proba(query)[0, 0] == pytest.approx(weights[0] / weights.sum())
    # 0.8 ** 1000 is 1e-97: it underflows in float32 (the similarities' type), not in the weights
    far = FormulaVote(elements=["Fe"], k=2, power=1000, val_fraction=0).fit([[1.0, 0.0], [0.0, 1.0]], [[0], [1]])
    assert far.predict_proba([[0.6, 0.8]])[0, 0] == pytest.approx(1)
    for bad in (0, -1, True, "16"):
        with pytest.raises(ModelError, match="power"):
            FormulaVote(elements=["Fe"], power=bad, val_fraction=0).fit(references, presence)


def test_a_vote_saved_before_its_references_were_float32_rows_still_votes():
    from ramanid.search import LibrarySearch
    from ramanid.training.baselines import FormulaVote

    rng = np.random.default_rng(0)
    X, Y, queries = rng.random((40, 16)), rng.integers(0, 2, (40, 2)), rng.random((5, 16))
    vote = FormulaVote(elements=["Fe", "S"], k=7, power=4, val_fraction=0).fit(X, Y)
    assert vote.library_.dtype == np.float32
    old = FormulaVote(elements=["Fe", "S"], k=7, power=4, val_fraction=0).fit(X, Y)
    old.library_ = LibrarySearch("cosine").fit(X, np.arange(len(X)))  # what such a vote holds
    np.testing.assert_allclose(old.predict_proba(queries), vote.predict_proba(queries), atol=1e-6)


def test_the_votes_similarities_are_cosines_under_its_spectral_score():
    from ramanid.search import SpectralScore
    from ramanid.training.baselines import FormulaVote

    references = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.1], [0.0, 1.0, 0.4]])
    presence = np.array([[1], [0], [0]])
    query = np.array([[0.96, 0.28, 0.02]])
    score = SpectralScore(0.5, 0)
    weights = np.clip(score(query) @ score(references).T, 0, None)[0]
    vote = FormulaVote(elements=["Fe"], k=3, intensity_power=0.5, val_fraction=0).fit(references, presence)
    assert vote.predict_proba(query)[0, 0] == pytest.approx(weights[0] / weights.sum(), rel=1e-5)
    plain = FormulaVote(elements=["Fe"], k=3, val_fraction=0).fit(references, presence)
    assert plain.predict_proba(query)[0, 0] != pytest.approx(vote.predict_proba(query)[0, 0], rel=1e-3)
    for bad in (
        {"intensity_power": 2},
        {"intensity_power": "0.5"},
        {"derivative_window": 4},
        {"derivative_window": 2.5},
    ):
        with pytest.raises(ModelError, match="power|window"):
            FormulaVote(elements=["Fe"], val_fraction=0, **bad).fit(references, presence)


def test_the_blends_noisy_validation_copies_have_the_asked_noise_and_the_min_max_scale():
    from ramanid.training.blend import noisy_copies

    X = np.zeros((400, 512), dtype=np.float32)
    X[:, 100] = 1.0
    noisy = noisy_copies(X, 10, seed=0)
    assert noisy.dtype == X.dtype and np.allclose(noisy.min(axis=1), 0) and np.allclose(noisy.max(axis=1), 1)
    scale = noisy[:, 100] - np.median(noisy, axis=1)  # the band's height over the noise, after rescaling
    assert 8 < np.median(scale / noisy[:, 200:].std(axis=1)) < 12  # about the asked SNR of 10
    assert np.array_equal(noisy, noisy_copies(X, 10, seed=0)) and not np.array_equal(noisy, noisy_copies(X, 10, 1))


def test_a_network_and_the_vote_are_blended_on_held_out_minerals(monkeypatch):
    from ramanid.training.baselines import FormulaVote, MeanOfVotes
    from ramanid.training.blend import KINDS_OF_SPECTRA, VOTE_SPECTRA, WEIGHTS

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 64))
    minerals = np.repeat(np.arange(12), 10)
    X = (centres[minerals] + 0.1 * rng.normal(size=(120, 64))).astype(np.float32)
    Y = rng.integers(0, 2, size=(12, 2))[minerals]
    fitted_on = []
    real_fit = FormulaVote.fit

    def spy(self, X_fit, Y_fit, groups=None):
        fitted_on.append({row.tobytes() for row in X_fit})
        return real_fit(self, X_fit, Y_fit, groups)

    monkeypatch.setattr(FormulaVote, "fit", spy)
    blend = make_estimator("mlp+vote", Task.parse("elements", ["Fe", "S"]), Options(epochs=2), 0)
    blend.fit(X, Y, groups=minerals)
    val = blend.validation_index_
    held_out = {row.tobytes() for row in X[val]}
    assert len(val) and not set(minerals[val]) & set(np.delete(minerals, val))  # whole minerals held out
    # one vote of the most neighbours per kind of spectra, whose ranking every k and power reads
    searches = len(KINDS_OF_SPECTRA)
    assert len(fitted_on) == searches + len(blend.spectra_) and not any(held_out & r for r in fitted_on[:searches])
    assert all(len(rows) == len(X) for rows in fitted_on[searches:])  # the vote keeps every training spectrum
    assert blend.weight_ in WEIGHTS and blend.chosen_.startswith(f"network weight {blend.weight_}, vote k=")
    assert blend.spectra_ in VOTE_SPECTRA
    train = np.setdiff1d(np.arange(len(X)), val)

    def as_if_fitted_alone(blend):
        """The blend's validation scores equal those of its chosen votes fitted alone."""
        votes = [FormulaVote(["Fe", "S"], k=blend.k_, power=blend.power_, val_fraction=0, intensity_power=p,
                             derivative_window=d).fit(X[train], Y[train]) for p, d in blend.spectra_]  # fmt: skip
        vote = np.mean([v.predict_proba(X[val]) for v in votes], axis=0)
        w = blend.weight_
        np.testing.assert_allclose(blend.validation_scores_, w * blend.network_.predict_proba(X[val]) + (1 - w) * vote)

    as_if_fitted_alone(blend)
    w = blend.weight_
    expected = w * blend.network_.predict_proba(X) + (1 - w) * blend.vote_.predict_proba(X)
    np.testing.assert_allclose(blend.predict_proba(X), expected)
    assert (blend.predict(X) == (expected >= blend.thresholds_)).all()
    # the mean of the votes on every kind of spectra, when it is the only choice
    monkeypatch.setattr(FormulaVote, "fit", real_fit)
    mean = make_estimator("mlp+vote", Task.parse("elements", ["Fe", "S"]), Options(epochs=2), 0)
    mean.set_params(spectra=(KINDS_OF_SPECTRA,)).fit(X, Y, groups=minerals)
    assert mean.spectra_ == KINDS_OF_SPECTRA and "the mean of votes on spectra to the power 1;" in mean.chosen_
    assert isinstance(mean.vote_, MeanOfVotes) and len(mean.vote_.votes) == len(KINDS_OF_SPECTRA)
    as_if_fitted_alone(mean)
    with pytest.raises(ModelError, match="use it with --task elements"):
        make_estimator("mlp+vote", Task.parse("mineral"), Options(), 0)
    with pytest.raises(ModelError, match="NETWORK\\+vote for elements"):
        make_estimator("lr+vote", Task.parse("elements"), Options(), 0)


def test_a_mean_of_votes_is_the_mean_and_its_voters_add_up_to_it():
    from ramanid.training.baselines import FormulaVote, MeanOfVotes

    rng = np.random.default_rng(1)
    X, Y = rng.random((40, 64)), rng.integers(0, 2, size=(40, 2))
    kinds = ((1.0, 0), (0.5, 9))
    votes = [FormulaVote(["Fe", "S"], k=7, power=4, val_fraction=0, intensity_power=p, derivative_window=d)
             for p, d in kinds]  # fmt: skip
    mean = MeanOfVotes([v.fit(X, Y) for v in votes])
    queries = rng.random((3, 64))
    np.testing.assert_allclose(
        mean.predict_proba(queries), (votes[0].predict_proba(queries) + votes[1].predict_proba(queries)) / 2
    )
    voters = mean.voters(queries[0])
    shares = np.array([share for _, _, share in voters])
    assert shares.sum() == pytest.approx(1) and (np.diff(shares) <= 0).all() and 7 <= len(voters) <= 14
    held = Y[[i for i, _, _ in voters]]
    np.testing.assert_allclose(shares @ held, mean.predict_proba(queries[:1])[0])  # each element's probability
    cosines = np.mean([np.clip(v.similarity(queries[:1])[0], 0, None) for v in votes], axis=0)
    assert [s for _, s, _ in voters] == pytest.approx(cosines[[i for i, _, _ in voters]])
    with pytest.raises(ModelError, match="at least one vote"):
        MeanOfVotes([])


def test_elements_all_and_the_formula_vote_in_cv(rruff_780):
    result = run_cv(
        rruff_780.spectra,
        task=Task.parse("elements", ["all"]),
        models=["formula_vote", "mlp+vote"],
        split="grouped:mineral",
        folds=3,
        options=Options(epochs=1),
        log=lambda _: None,
    )
    assert len(result["classes"]) >= 10 and {"O", "Si", "Fe", "S"} <= set(result["classes"])
    for name in ("formula_vote", "mlp+vote", "mlp+vote (its network alone)"):
        assert 0.5 < result["models"][name]["summary"]["macro_roc_auc"]["mean"] < 1, name
    assert all(f["model_chosen"].startswith("network weight") for f in result["models"]["mlp+vote"]["folds"])
    with pytest.raises(Exception, match="use it with --task elements"):
        run_cv(toy(), models=["formula_vote"], folds=3, log=lambda _: None)


def test_auto_model_choices_see_the_training_rows_only(monkeypatch):
    from ramanid.training.baselines import AutoClassifier

    sizes = []
    original = AutoClassifier.fit

    def spy(self, X, y, groups=None):
        sizes.append(len(X))
        return original(self, X, y, groups=groups)

    monkeypatch.setattr(AutoClassifier, "fit", spy)
    result = run_cv(toy(), models=["auto"], split="grouped:rruff_id", folds=3, log=lambda _: None)
    folds = result["models"]["auto"]["folds"]
    assert sizes == [f["train_size"] for f in folds] and all(
        f["model_chosen"] in ("lr", "svm", "gbm_pca") for f in folds
    )
    for fold in folds:  # the record says what each candidate scored on the inner folds and took
        assert set(fold["model_scores"]) == set(fold["model_seconds"]) == set(AutoClassifier().candidates)
        assert fold["model_scores"][fold["model_chosen"]] == max(fold["model_scores"].values())
        assert all(seconds >= 0 for seconds in fold["model_seconds"].values())


def test_tuned_options_are_chosen_on_inner_folds_of_the_training_rows(monkeypatch):
    from ramanid.training import recipe, selection

    spectra, seen = toy(), []
    real_choose, real_splits = recipe.choose_options, selection.inner_splits

    def choose_spy(name, task, options, X, y, groups=None, **kwargs):
        seen.append({"rows": {row.tobytes() for row in X}, "groups": groups})
        return real_choose(name, task, options, X, y, groups, **kwargs)

    def splits_spy(X, y, groups=None, *args):
        splits = real_splits(X, y, groups, *args)
        assert all(not set(groups[train]) & set(groups[test]) for train, test in splits)  # grouped inside too
        return splits

    monkeypatch.setattr(recipe, "choose_options", choose_spy)
    monkeypatch.setattr(selection, "inner_splits", splits_spy)
    options = Options(epochs=2, tune={"lr": (0.01, 0.001), "hidden": (8, 16)})
    result = run_cv(spectra, models=["mlp"], split="grouped:rruff_id", folds=3, options=options, log=lambda _: None)
    y = spectra.meta["mineral"].to_numpy()
    for fold, (train, test), record in zip(
        seen, Split.parse("grouped:rruff_id", 3).indices(spectra, y), result["models"]["mlp"]["folds"], strict=True
    ):
        assert len(fold["rows"]) == len(train) and not fold["rows"] & {
            row.tobytes() for row in spectra.intensities[test]
        }
        assert len(record["tune_scores"]) == 4 and record["tuned"]["lr"] in (0.01, 0.001)
        best = max(record["tune_scores"], key=lambda s: s["score"])
        assert record["tuned"] == {"hidden": best["hidden"], "lr": best["lr"]}


def test_cv_tune_from_the_command_line_reports_each_choice(tmp_path):
    data = toy().save(tmp_path / "toy.npz")
    args = ["cv", "--data", str(data), "--model", "mlp", "--epochs", "2", "--folds", "3"]
    result = CliRunner().invoke(main, [*args, "--tune", "lr=0.01,0.001", "--out", str(tmp_path / "cv")])
    assert result.exit_code == 0, result.output
    assert (
        "## Choices made on each training part" in result.output and '| mlp | 3 | options: {"lr": 0.0' in result.output
    )
    bad = CliRunner().invoke(main, [*args, "--tune", "dropout=0.1", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 1 and "--tune 'dropout=0.1'" in bad.output


def test_tune_refuses_what_it_cannot_vary():
    from ramanid.errors import ModelError
    from ramanid.training.selection import parse_tune

    assert parse_tune(["lr=0.01,0.001", "wd=0,1e-4", "hidden=32"]) == {
        "lr": (0.01, 0.001),
        "weight_decay": (0.0, 1e-4),
        "hidden": (32,),
    }
    for bad, message in [
        ("lr", "expected NAME=V1,V2"),
        ("dropout=0.1", "NAME one of"),
        ("hidden=3.5", "must be whole numbers"),
        ("augment=light", "'none' or 'default'"),
        ("model.whole=maybe", "numbers, true or false"),
    ]:
        with pytest.raises(ModelError, match=message):
            parse_tune([bad])
    from ramanid.training.factory import make_estimator
    from ramanid.training.selection import with_choice

    assert parse_tune(["model.whole=true,False", "model.blocks=2,3"]) == {
        "model.whole": (True, False),
        "model.blocks": (2, 3),
    }
    chosen = with_choice(Options(hidden=16), {"lr": 0.1, "patience": 5, "augment": "none", "model.whole": False})
    estimator = make_estimator("attention_resnet", Task.parse("elements"), chosen, 0)
    assert (estimator.lr, estimator.patience, estimator.augment) == (0.1, 5, {}) and chosen.tune == {}
    assert estimator.model_params == {"whole": False, "hidden": 16}
    import torch

    from ramanid.models import build_model
    from ramanid.models.registry import count_parameters

    without = build_model("attention_resnet", 256, 6, whole=False)
    assert without(torch.rand(3, 256)).shape == (3, 6) and without.whole is None
    assert count_parameters(build_model("attention_resnet", 256, 6)) > count_parameters(without)
    with pytest.raises(ModelError, match="unexpected keyword argument 'wings'"):
        build_model("attention_resnet", 256, 6, wings=2)
    assert (
        make_estimator(
            "attention_resnet", Task.parse("elements"), with_choice(Options(), {"augment": "default"}), 0
        ).augment
        is None
    )
    with pytest.raises(ModelError, match="given twice"):
        parse_tune(["lr=0.1", "lr=0.2"])
    for model, tune, message in [
        ("lr", {"lr": (0.1,)}, "lr is not a network and has no training options"),
        ("lr", {"model.C": (1, 2)}, "lr has no parameter 'C'"),
        (
            "formula_vote",
            {"model.q": (1, 2)},
            r"formula_vote has no parameter 'q': it takes \['derivative_window', 'intensity_power', 'k', 'power'\]",
        ),
    ]:
        with pytest.raises(ModelError, match=message):
            run_cv(toy(), models=[model], folds=3, options=Options(tune=tune), log=lambda _: None)


def test_the_formula_votes_neighbours_are_chosen_on_inner_folds_of_whole_minerals(rruff_780):
    spectra = rruff_780.spectra
    options = Options(tune={"model.k": (1, 20)})
    task = Task.parse("elements")
    result = run_cv(spectra, task=task, models=["formula_vote"], split="grouped:mineral", folds=3, options=options)
    for record in result["models"]["formula_vote"]["folds"]:
        scores = {s["model.k"]: s["score"] for s in record["tune_scores"]}
        assert record["tuned"] == {"model.k": max(scores, key=scores.get)} and 0.5 < min(scores.values()) < 1
