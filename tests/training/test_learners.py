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


def test_per_group_standardisation_carries_to_a_culture_never_seen(ecoli):
    results = run_cv(
        ecoli,
        task="label:label",
        models=["lr", "lr+by_group"],
        split="grouped:group",
        folds=3,
        options=Options(),
        log=lambda _: None,
    )["models"]
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


def test_the_preprocessing_stand_in_sees_the_spectra_as_by_group_does(ecoli, monkeypatch):
    from ramanid.training import selection

    seen = []
    real = selection.standardise_each
    monkeypatch.setattr(selection, "standardise_each", lambda X, groups=None: seen.append(groups) or real(X, groups))
    X, y, groups = ecoli.intensities, ecoli.meta["label"].to_numpy(), ecoli.meta["group"].to_numpy()
    spec, scores = choose_preprocessing(X, y, ecoli.shifts, groups, candidates=("none", "snv"), by_group=True)
    assert spec in scores and len(seen) == 2 * 2 * 3  # 2 candidates x 3 inner folds x (training, held out)
    assert all(g is None or len(set(g)) == 2 for g in seen)  # training: the two other cultures, each its own


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
