"""Calibrated probabilities, conformal answer sets and unknown scores: on synthetic cases where the
answer is known, and in a saved model's predictions."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.special import softmax

from ramanid import confidence as conf
from ramanid.cli import main
from ramanid.errors import ModelError


def _sampled(n=4000, classes=8, temperature=1.0, seed=0):
    """Logits whose classes are drawn from softmax(logits / temperature): a known calibration."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, classes))
    proba = softmax(logits / temperature, axis=1)
    y = np.array([rng.choice(classes, p=p) for p in proba])
    return logits, y


def test_temperature_scaling_recovers_a_known_temperature_and_lowers_the_ece():
    logits, y = _sampled(temperature=2.5)
    temperature = conf.fit_temperature(logits, y)
    assert temperature == pytest.approx(2.5, rel=0.1)
    before = conf.expected_calibration_error(conf.calibrated(logits, 1.0), y)
    after = conf.expected_calibration_error(conf.calibrated(logits, temperature), y)
    assert before > 0.05 and after < 0.03


def test_reliability_tables_pool_sets_of_answers_as_one():
    """Two sets each 0.1 off (one right 80 of 100 times at 0.9, one always right at 0.9) pool to
    none off; a table's error is that of its answers, and pooling is the error of all of them."""
    stated = np.full(100, 0.9)
    over, under = (np.arange(100) < k for k in (80, 100))
    tables = [conf.reliability(stated, right) for right in (over, under)]
    assert [conf.calibration_error_of(t) for t in tables] == pytest.approx([0.1, 0.1])
    assert conf.calibration_error_of(sum(tables)) == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    a, b = rng.random(300), rng.random(200)
    right_a, right_b = rng.random(300) < a**2, rng.random(200) < b
    pooled = conf.reliability(a, right_a) + conf.reliability(b, right_b)
    both = conf.top1_calibration_error(np.r_[a, b], np.r_[right_a, right_b])
    assert conf.calibration_error_of(pooled) == pytest.approx(both)
    assert conf.calibration_error_of(conf.reliability([], [])) == 0.0


def test_the_brier_temperature_recovers_a_known_one_and_is_moved_less_by_answers_far_wrong():
    logits, y = _sampled(temperature=2.5)
    assert conf.fit_temperature_brier(logits, y) == pytest.approx(2.5, rel=0.1)
    # 3% of spectra whose truth scores far below every other class (a poor sample's copies)
    rng = np.random.default_rng(3)
    wrong = rng.normal(scale=2.0, size=(120, 8))
    wrong[:, 0] = wrong.min(axis=1) - 15
    logits, y = np.vstack([logits, wrong]), np.concatenate([y, np.zeros(120, dtype=int)])
    by_likelihood, by_brier = conf.fit_temperature(logits, y), conf.fit_temperature_brier(logits, y)
    assert by_likelihood > 3.0 and abs(by_brier - 2.5) < abs(by_likelihood - 2.5) / 2


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_conformal_sets_cover_as_stated_on_exchangeable_data(level):
    logits, y = _sampled(n=6000, temperature=1.0, seed=1)
    proba = conf.calibrated(logits, 1.0)
    calibration, test = slice(0, 3000), slice(3000, None)
    threshold = conf.conformal_quantile(conf.conformity_scores(proba[calibration], y[calibration]), level)
    sets = conf.answer_sets(proba[test], threshold)
    coverage = np.mean([y[test][i] in s for i, s in enumerate(sets)])
    assert level - 0.02 <= coverage <= level + 0.03  # at least the level, up to the finite-sample slack
    assert 1 <= np.mean([len(s) for s in sets]) < 8


def test_conformal_edge_cases():
    assert conf.conformal_quantile([0.5, 0.6], 0.99) == float("inf")  # too few calibration spectra
    assert [len(s) for s in conf.answer_sets(np.array([[0.7, 0.2, 0.1]]), float("inf"))] == [3]
    with pytest.raises(ModelError, match="confidence 1.5"):
        conf.conformal_quantile([0.1], 1.5)


def test_unknown_scores_rank_far_queries_above_near_ones():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16))
    labels = np.repeat(np.arange(5), 20)
    references = centres[labels] + 0.1 * rng.normal(size=(100, 16))
    near = centres[[0, 1, 2]] + 0.1 * rng.normal(size=(3, 16))
    far = rng.normal(size=(3, 16)) * 3
    for score in (conf.nearest_unknown, conf.prototype_unknown, conf.mahalanobis_unknown):
        args = (references,) if score is conf.nearest_unknown else (references, labels)
        assert score(far, *args).min() > score(near, *args).max(), score.__name__
    confident, unsure = np.array([[8.0, 0.0, 0.0]]), np.array([[0.1, 0.0, 0.0]])
    for score in (conf.msp_unknown, conf.max_logit_unknown, conf.energy_unknown):
        assert score(unsure)[0] > score(confident)[0], score.__name__


def test_the_unknown_score_and_threshold_come_from_validation_only():
    rng = np.random.default_rng(0)
    unknown = np.r_[np.zeros(95, bool), np.ones(5, bool)]
    good, useless = np.where(unknown, 1.0, 0.0) + 0.1 * rng.random(100), rng.random(100)
    name, threshold, auroc = conf.choose_unknown_score({"good": good, "useless": useless}, unknown)
    assert name == "good" and auroc["good"] == 1.0
    assert threshold == pytest.approx(np.quantile(good[~unknown], 0.95))
    assert conf.choose_unknown_score({"library cosine": good}, np.zeros(100, bool))[2] == {}


@pytest.fixture(scope="module")
def trained(rruff_780, tmp_path_factory):
    folder = tmp_path_factory.mktemp("confidence")
    data = rruff_780.spectra.save(folder / "rruff780.npz")
    result = CliRunner().invoke(
        main, ["train", "--data", str(data), "--model", "ramannet", "--epochs", "4", "--out", str(folder / "model")]
    )
    assert result.exit_code == 0, result.output
    return folder / "model", rruff_780.spectra


def test_calibration_is_fitted_on_the_validation_specimens(trained):
    from ramanid.bundle import load_bundle

    model, spectra = trained
    bundle = load_bundle(model)
    validation, estimator = bundle.info.validation, bundle.estimator
    assert validation["grouped_by"] == "rruff_id"
    # the folder names its validation rows: whole specimens, none of them in training
    rows = np.array(validation["index"])
    specimens = spectra.meta["rruff_id"].astype(str).to_numpy()
    assert len(rows) == validation["n_spectra"] and not set(specimens[rows]) & set(np.delete(specimens, rows))
    # recomputed from the validation spectra of minerals seen in training, the stored temperature
    # is the same number
    y = spectra.meta["mineral"].astype(str).to_numpy()
    known = rows[np.isin(y[rows], np.delete(y, rows))]
    assert 0 < len(known) < len(rows)
    codes = np.searchsorted(estimator.classes_, y[known])
    logits = estimator.logits(spectra.intensities[known])
    calibration = bundle.info.calibration
    assert conf.fit_temperature(logits, codes) == pytest.approx(calibration.temperature, rel=1e-4)
    assert len(calibration.conformal_scores) == len(known)


def test_predict_gives_the_three_answers(trained, tmp_path):
    model, spectra = trained
    sample = tmp_path / "sample.csv"
    np.savetxt(sample, np.column_stack([spectra.shifts, spectra.intensities[5]]), delimiter=",")
    runner = CliRunner()
    result = runner.invoke(main, ["predict", str(model), str(sample), "--format", "json", "--confidence", "0.9"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)[0]
    assert answer["confidence"] == 0.9 and len(answer["answer_set"]) >= 1
    assert answer["top"][0][0] in answer["answer_set"] and 0 < answer["top"][0][1] <= 1
    assert isinstance(answer["unknown"], bool) and np.isfinite(answer["unknown_score"])
    wider = json.loads(
        runner.invoke(main, ["predict", str(model), str(sample), "--format", "json", "--confidence", "0.99"]).stdout
    )[0]
    assert len(wider["answer_set"]) >= len(answer["answer_set"])
    table = runner.invoke(main, ["predict", str(model), str(sample), "--format", "csv"]).output
    assert "set95%" in table.splitlines()[0]
