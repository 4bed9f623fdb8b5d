"""The stronger learners for small labelled sets (MiniRocket, LightGBM on the spectrum), the time
budget of ``auto``, and per-group standardisation, on the real E. coli cultures and small cases."""

import numpy as np
import pytest

from ramanid.deploy import train_bundle
from ramanid.errors import ModelError, RamanIdError
from ramanid.evaluation.protocol import ONE_AT_A_TIME, run_cv
from ramanid.targets import Task
from ramanid.training.baselines import AUTO_CANDIDATES, AutoClassifier, classical_model
from ramanid.training.by_group import GroupStandardised, standardise_each
from ramanid.training.epo import Orthogonalised, nuisance_directions
from ramanid.training.factory import Options, make_estimator
from ramanid.training.selection import choose_preprocessing


def _bands(n=90, points=200, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(list("abc"), n // 3)
    x = np.arange(points)
    centres = {"a": 50, "b": 100, "c": 150}
    X = np.array([np.exp(-0.5 * ((x - centres[label]) / 4) ** 2) for label in y]) + 0.05 * rng.random((n, points))
    return X, y


@pytest.mark.parametrize("name", ["minirocket", "lgbm", "stack"])
def test_the_new_learners_tell_bands_apart_and_give_probabilities(name):
    X, y = _bands()
    model = classical_model(name, random_state=0).fit(X[::2], y[::2])
    proba = model.predict_proba(X[1::2])
    assert proba.shape == (45, 3) and np.allclose(proba.sum(axis=1), 1)
    assert (model.classes_[proba.argmax(axis=1)] == y[1::2]).mean() > 0.9


def test_a_budget_leaves_the_dearest_candidates_untried():
    X, y = _bands()
    full = AutoClassifier(random_state=0).fit(X, y)
    assert set(full.scores_) == set(AUTO_CANDIDATES) and full.untried_ == []
    tight = AutoClassifier(budget=1e-9, random_state=0).fit(X, y)
    assert list(tight.scores_) == ["lr"] and tight.untried_ == list(AUTO_CANDIDATES[1:]) and tight.chosen_ == "lr"


def test_standardise_each_group_on_its_own():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5)) + np.repeat([[0.0], [10.0]], 20, axis=0)
    groups = np.repeat(["g1", "g2"], 20)
    Z = standardise_each(X, groups)
    for g in ("g1", "g2"):
        np.testing.assert_allclose(Z[groups == g].mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(Z[groups == g].std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(standardise_each(X[:20]), Z[:20])  # one batch is one group
    assert np.isfinite(standardise_each(np.ones((3, 4)))).all()  # flat points stay finite


@pytest.fixture(scope="module")
def culture_out(ecoli):
    """LR plain, standardised by culture and with EPO, each culture of E. coli held out in turn."""
    return run_cv(
        ecoli,
        task="label:label",
        models=["lr", "lr+by_group", "lr+epo"],
        split="grouped:group",
        folds=3,
        options=Options(),
        log=lambda _: None,
    )["models"]


def test_per_group_standardisation_carries_to_a_culture_never_seen(culture_out):
    results = culture_out
    plain = results["lr"]["summary"]["balanced_accuracy"]["mean"]
    by_group = results["lr+by_group"]["summary"]["balanced_accuracy"]["mean"]
    assert by_group > plain + 0.05  # each culture's offset is what LR's weights do not carry
    # transductive: it is also scored one spectrum at a time, where a batch of one says nothing
    alone = [
        fold["variants"][ONE_AT_A_TIME]["metrics"]["balanced_accuracy"] for fold in results["lr+by_group"]["folds"]
    ]
    assert max(alone) <= 0.5


def test_per_group_standardisation_is_for_labels_in_cv_only(ecoli):
    model = make_estimator("svm+by_group", Task.parse("label:label"), Options(), 0)
    assert isinstance(model, GroupStandardised) and model.transductive
    with pytest.raises(ModelError, match="it is for label tasks"):
        make_estimator("lr+by_group", Task.parse("elements"), Options(), 0)
    with pytest.raises(RamanIdError, match="standardises each batch as one group"):
        train_bundle(ecoli, task=Task.parse("label:label"), model="lr+by_group", options=Options(), seed=0, folder="x")


def test_nuisance_directions_span_how_each_class_differs_between_groups():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 12))
    y, groups = np.tile(np.repeat(["a", "b"], 20), 2), np.repeat(["g1", "g2"], 40)
    X[groups == "g2"] += 3.0 * np.eye(12)[4]  # the second culture is brighter at point 4
    V = nuisance_directions(X, y, groups)
    np.testing.assert_allclose(V @ V.T, np.eye(len(V)), atol=1e-10)  # orthonormal
    assert len(V) == 2  # one difference per class (two groups): at most two directions
    projected = X - X @ V.T @ V
    for label in "ab":  # after projection, each class's group means agree
        means = [projected[(y == label) & (groups == g)].mean(axis=0) for g in ("g1", "g2")]
        np.testing.assert_allclose(means[0], means[1], atol=1e-10)
    assert nuisance_directions(X, y, np.repeat("one", 80)).shape == (0, 12)  # one group: nothing to remove


def test_epo_carries_to_a_culture_never_seen_one_spectrum_at_a_time(culture_out):
    results = culture_out
    plain = results["lr"]["summary"]["balanced_accuracy"]["mean"]
    projected = results["lr+epo"]["summary"]["balanced_accuracy"]["mean"]
    assert projected > plain + 0.02  # what differs between the training cultures is not learnt
    assert all("variants" not in fold for fold in results["lr+epo"]["folds"])  # not transductive
    assert not make_estimator("lr+epo", Task.parse("label:label"), Options(), 0).transductive


def test_epo_models_are_saved_classical_ones_and_refused_for_networks(ecoli, tmp_path):
    from ramanid.bundle import load_bundle

    model = make_estimator("svm+epo", Task.parse("label:label"), Options(), 0)
    assert isinstance(model, Orthogonalised)
    with pytest.raises(ModelError, match="it is for label tasks"):
        make_estimator("lr+epo", Task.parse("elements"), Options(), 0)
    with pytest.raises(RamanIdError, match="takes MODEL\\+epo for the classical models"):
        train_bundle(ecoli, task=Task.parse("label:label"), model="ramannet+epo", options=Options(), seed=0, folder="x")
    bundle = train_bundle(
        ecoli, task=Task.parse("label:label"), model="lr+epo", options=Options(), seed=0, folder=tmp_path / "m",
        log=lambda *_: None,
    )  # fmt: skip
    loaded = load_bundle(tmp_path / "m")
    fitted = loaded.estimator.model_
    assert isinstance(fitted, Orthogonalised) and len(fitted.directions_) > 0  # learnt from the training cultures
    np.testing.assert_allclose(
        loaded.estimator.predict_proba(ecoli.intensities[:20]), bundle.estimator.predict_proba(ecoli.intensities[:20])
    )


def test_auto_inside_epo_still_says_what_it_chose():
    from ramanid.training.classical import SavedClassifier

    X, y = _bands()
    groups = np.tile(["g1", "g2", "g3"], 30)
    model = SavedClassifier("auto+epo", budget=1e-9, random_state=0).fit(X, y, groups)
    assert isinstance(model.model_, Orthogonalised) and model.chosen_ == "lr"  # the budget leaves lr alone
    assert "auto+epo (lr)" in model.attribution(X[:1]).label


def test_the_preprocessing_stand_in_sees_the_spectra_as_by_group_does(ecoli, monkeypatch):
    from ramanid.training import selection

    seen = []
    real = selection.standardise_each
    monkeypatch.setattr(selection, "standardise_each", lambda X, groups=None: seen.append(groups) or real(X, groups))
    X, y, groups = ecoli.intensities, ecoli.meta["label"].to_numpy(), ecoli.meta["group"].to_numpy()
    spec, scores = choose_preprocessing(X, y, ecoli.shifts, groups, candidates=("none", "snv"), by_group=True)
    assert spec in scores and len(seen) == 2 * 2 * 3  # 2 candidates x 3 inner folds x (training, held out)
    assert all(g is None or len(set(g)) == 2 for g in seen)  # training: the two other cultures, each its own


def test_the_preprocessing_stand_in_sees_the_spectra_as_epo_does(ecoli, monkeypatch):
    from ramanid.training import selection

    seen = []
    real = selection.nuisance_directions
    monkeypatch.setattr(selection, "nuisance_directions", lambda X, y, g: seen.append(set(g)) or real(X, y, g))
    X, y, groups = ecoli.intensities, ecoli.meta["label"].to_numpy(), ecoli.meta["group"].to_numpy()
    spec, scores = choose_preprocessing(X, y, ecoli.shifts, groups, candidates=("none", "snv"), epo=True)
    assert spec in scores and len(seen) == 2 * 3  # 2 candidates x 3 inner folds
    assert all(len(g) == 2 for g in seen)  # learnt from the inner training part's two cultures


def test_the_stack_learns_its_weights_on_held_out_groups(monkeypatch):
    from ramanid.training import baselines

    X, y = _bands()
    groups = np.tile(["g1", "g2", "g3"], 30)
    held_out = []
    real = baselines.inner_splits
    monkeypatch.setattr(
        baselines, "inner_splits", lambda *a, **k: [held_out.append(set(groups[t])) or (r, t) for r, t in real(*a, **k)]
    )
    model = classical_model("stack", random_state=0).fit(X, y, groups)
    assert held_out == [{"g1"}, {"g2"}, {"g3"}] or sorted(map(sorted, held_out)) == [["g1"], ["g2"], ["g3"]]
    assert model.final_.coef_.shape == (3, 3 * len(model.members))
