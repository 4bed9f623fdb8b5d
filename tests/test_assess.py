"""The degradation protocol read through saved models (``ramanid.assess``), on real RRUFF spectra."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ramanid.assess import degraded, element_truth, evaluate_elements_degraded
from ramanid.bundle import BundleError, load_bundle
from ramanid.deploy import train_bundle
from ramanid.evaluation.degradation import Condition, conditions
from ramanid.evaluation.splits import Split
from ramanid.holdout import choose_thresholds
from ramanid.predict import element_inputs, element_thresholds, predict_prepared
from ramanid.targets import Task
from ramanid.training.factory import Options


def saved_on_four_folds(rruff_780, rruff_all, folder, model: str, options: Options):
    """An element model ``model`` saved from four folds of the 780 nm set grouped by mineral, and
    the files of the fifth fold's minerals as read (their spectra as measured).
    """
    task = Task.parse("elements")
    spectra, y = task.labelled(rruff_780.spectra, lambda *_: None)
    train, test = Split.parse("grouped:mineral", 5, seed=0).indices(spectra, y)[0]
    train_bundle(
        spectra.subset(train), task=task, model=model, options=options, seed=0, folder=folder, log=lambda *_: None
    )
    files = set(spectra.meta["file"].iloc[test])
    return load_bundle(folder), [s for s in rruff_all[0] if s.meta["file"] in files]


@pytest.fixture(scope="module")
def held_out_minerals(rruff_780, rruff_all, tmp_path_factory):
    """A formula-vote element model saved from four folds, and the fifth fold's files."""
    return saved_on_four_folds(
        rruff_780, rruff_all, tmp_path_factory.mktemp("vote") / "model", "formula_vote", Options()
    )


def test_each_condition_degrades_the_same_way_every_time():
    from ramanid.spectra import Spectrum

    x = np.linspace(100, 1400, 500)
    spectrum = Spectrum(x, np.exp(-0.5 * ((x - 700) / 5) ** 2), {})
    custom = Condition("my noise", (("noise", 10),))  # not one of the protocol's: seeded by its name
    for condition in (conditions()[3], custom):
        first, again = degraded([spectrum] * 2, condition, seed=1), degraded([spectrum] * 2, condition, seed=1)
        np.testing.assert_array_equal(first[0].intensities, again[0].intensities)
        assert not np.array_equal(first[0].intensities, first[1].intensities)  # each spectrum its own draw


def test_element_figures_are_those_of_the_model_on_the_same_spectra(held_out_minerals):
    bundle, queries = held_out_minerals
    assert len(queries) > 100
    clean, noisy = (
        evaluate_elements_degraded({"vote": bundle}, queries, condition, seed=0)
        for condition in (Condition("clean"), Condition("SNR 5", (("noise", 5),)))
    )
    model = bundle.estimator
    X, kept, _, quality = bundle.prepare(queries)
    Y, readable = element_truth(kept, model.elements_)
    scores = model.decision_scores(element_inputs(bundle, X, quality)[readable])
    figures = clean["models"]["vote"]
    assert figures["n"] == readable.sum()
    for j, element in enumerate(model.elements_):
        assert figures["auc"][element] == pytest.approx(roc_auc_score(Y[readable, j], scores[:, j]))
        assert figures["true_share"][element] == pytest.approx(Y[readable, j].mean(), abs=1e-4)
        reported = scores[:, j] >= element_thresholds(bundle, X, quality)[readable, j]  # as predict applies them
        assert figures["reported_share"][element] == pytest.approx(reported.mean(), abs=1e-4)
    # unseen minerals, clean: the vote is well above chance on the anions, and noise costs it
    assert figures["auc"]["P"] > 0.75 and figures["auc"]["S"] > 0.75
    assert noisy["models"]["vote"]["macro"] < figures["macro"]


def test_the_share_rule_reports_as_many_present_as_are():
    rng = np.random.default_rng(0)
    Y = (rng.uniform(size=(400, 3)) < [0.05, 0.2, 0.5]).astype(int)
    scores = Y * rng.normal(1, 1, Y.shape) + rng.normal(0, 1, Y.shape)
    thresholds = choose_thresholds(Y, scores, "share")
    np.testing.assert_array_equal((scores >= thresholds).sum(0), Y.sum(0))
    # tied scores (a vote's zeros) fall on one side together: the closest count, never everything
    tied = np.array([0, 0, 0, 0, 0, 0.1, 0.5, 0.9])
    assert choose_thresholds(np.array([[0, 0, 0, 0, 1, 1, 1, 1]]).T, tied[:, None], "share")[0] == 0.1
    # with the share of a larger set (a training part's), as many as that share of the validation rows
    share = np.array([0.1, 0.2, 0.3])
    given = choose_thresholds(Y, scores, "share", share=share)
    np.testing.assert_allclose((scores >= given).sum(0), share * len(Y), atol=1)
    youden = choose_thresholds(Y, scores, "youden")
    assert (scores >= youden).sum(0)[0] > Y.sum(0)[0]  # Youden's reports a rare element more often than it is


def test_element_thresholds_are_chosen_per_quality_on_degraded_held_out_minerals(held_out_minerals):
    from ramanid.quality import KEYED_WITH_BACKGROUND, SNR_BINS, calibration_keys
    from ramanid.training.identifier import input_snr_bins

    bundle, queries = held_out_minerals
    by_block = bundle.info.element_thresholds_by_quality
    assert bundle.info.element_keyed_by == KEYED_WITH_BACKGROUND
    assert by_block is not None and len(by_block) == 2 * len(SNR_BINS)  # each bin, then its strong background's
    assert all(t is None or len(t) == 6 for t in by_block) and sum(t is not None for t in by_block) >= 3
    noisy = degraded(queries, Condition("SNR 10", (("noise", 10),)), seed=0)
    X, kept, _, quality = bundle.prepare(noisy)
    thresholds = element_thresholds(bundle, X, quality)
    # keyed by the spectrum as read, not by the input: an input's ratio is its own maximum over its noise
    keys = calibration_keys(input_snr_bins(X), quality, KEYED_WITH_BACKGROUND)
    np.testing.assert_array_equal(keys % len(SNR_BINS), [q.bin for q in quality])
    for row, b in zip(thresholds, keys, strict=True):
        np.testing.assert_array_equal(row, by_block[b] if by_block[b] is not None else bundle.estimator.thresholds_)
    answers = predict_prepared(bundle, X, [s.source for s in kept], quality=quality)
    inputs = element_inputs(bundle, X, quality)
    assert [a.elements["S"]["present"] for a in answers] == list(
        bundle.estimator.decision_scores(inputs)[:, 3] >= thresholds[:, 3]
    )
    # the point: on noisy spectra of unseen minerals, the shares reported present follow the true
    # shares more closely with the thresholds of their block than with the clean ones
    Y, readable = element_truth(kept, bundle.estimator.elements_)
    scores = bundle.estimator.decision_scores(inputs)[readable]
    true = Y[readable].mean(0)
    by_quality = np.abs((scores >= thresholds[readable]).mean(0) - true).mean()
    one_set = np.abs((scores >= bundle.estimator.thresholds_).mean(0) - true).mean()
    assert by_quality < one_set


def test_a_strong_background_has_element_thresholds_of_its_own(held_out_minerals):
    from ramanid.quality import SNR_BINS

    bundle, queries = held_out_minerals
    by_block = bundle.info.element_thresholds_by_quality
    # a handheld probe's SNR 20 and a microscope's SNR 50 and more, each under a background
    conditions = [
        Condition(f"SNR {snr}, {x}x", (("noise", snr), ("fluorescence", x))) for snr, x in [(20, 5), (200, 1)]
    ]
    X, _, _, quality = bundle.prepare([s for c in conditions for s in degraded(queries, c, seed=0)])
    strong = np.array([q.strong_background for q in quality])
    assert strong.sum() > len(X) // 2
    keys = bundle.info.element_keys(np.zeros(len(X), dtype=int), quality)
    assert (keys[strong] >= len(SNR_BINS)).all() and (keys[~strong] < len(SNR_BINS)).all()
    strong_bins = {q.bin for q in np.array(quality)[strong]}
    assert len(SNR_BINS) - 1 in strong_bins and min(strong_bins) < len(SNR_BINS) - 1  # the top bin's too
    thresholds = element_thresholds(bundle, X, quality)
    for row, b in zip(thresholds[strong], keys[strong], strict=True):
        np.testing.assert_array_equal(row, by_block[b] if by_block[b] is not None else bundle.estimator.thresholds_)


def test_folders_keyed_by_the_input_keep_their_thresholds(held_out_minerals, tmp_path):
    import json
    import shutil

    from ramanid.quality import SNR_BINS
    from ramanid.training.identifier import input_snr_bins

    bundle, queries = held_out_minerals
    folder = tmp_path / "model"
    shutil.copytree(bundle.path, folder)
    header = json.loads((folder / "bundle.json").read_text())
    del header["element_keyed_by"]  # as folders of 2026-12-05 and before: one block per bin of the input
    header["element_thresholds_by_quality"] = [None, [0.5] * 6, [0.4] * 6, None, [0.3] * 6]
    header.pop("element_smoothing_by_quality", None)
    (folder / "bundle.json").write_text(json.dumps(header))
    older = load_bundle(folder)
    X, _, _, quality = older.prepare(degraded(queries, Condition("SNR 10", (("noise", 10),)), seed=0))
    expected = [header["element_thresholds_by_quality"][b] or older.estimator.thresholds_ for b in input_snr_bins(X)]
    np.testing.assert_array_equal(element_thresholds(older, X, quality), expected)
    header["element_thresholds_by_quality"] = [[0.5] * 6] * 2 * len(SNR_BINS)
    (folder / "bundle.json").write_text(json.dumps(header))
    with pytest.raises(BundleError, match="element_thresholds_by_quality.*5 lists"):
        load_bundle(folder)


def test_noisy_inputs_are_smoothed_by_the_window_their_block_chose(held_out_minerals):
    from ramanid.preprocessing.smooth import smoothed_in_range
    from ramanid.quality import SNR_BINS

    bundle, queries = held_out_minerals
    windows = bundle.info.element_smoothing_by_quality
    top = len(SNR_BINS) - 1
    assert windows is not None and len(windows) == 2 * len(SNR_BINS) and windows[top] == 0  # clean inputs as they are
    X, kept, _, quality = bundle.prepare(degraded(queries, Condition("SNR 10", (("noise", 10),)), seed=0))
    keys, smoothed = bundle.info.element_keys(np.zeros(len(X), dtype=int), quality), element_inputs(bundle, X, quality)
    for b in np.unique(keys):
        np.testing.assert_allclose(smoothed[keys == b], smoothed_in_range(X[keys == b], windows[b]), atol=1e-6)
    assert np.allclose(smoothed.min(1), X.min(1), atol=1e-5) and np.allclose(smoothed.max(1), X.max(1), atol=1e-5)
    # chosen on held-out minerals of the training part; checked here on minerals never seen
    Y, readable = element_truth(kept, bundle.estimator.elements_)
    model = bundle.estimator

    def macro(inputs):
        scores = model.decision_scores(inputs[readable])
        return np.mean([roc_auc_score(Y[readable, j], scores[:, j]) for j in range(Y.shape[1])])

    assert macro(smoothed) >= macro(X) - 0.01


def test_a_malformed_smoothing_window_is_refused_at_load(held_out_minerals, tmp_path):
    import json
    import shutil

    bundle, _ = held_out_minerals
    folder = tmp_path / "model"
    shutil.copytree(bundle.path, folder)
    header = json.loads((folder / "bundle.json").read_text())
    header["element_smoothing_by_quality"] = [0, 0, 4, 0, 0, 0, 0, 0, 0, 0]
    (folder / "bundle.json").write_text(json.dumps(header))
    with pytest.raises(BundleError, match="element_smoothing_by_quality.*odd number of points"):
        load_bundle(folder)


@pytest.fixture(scope="module")
def held_out_blend(rruff_780, rruff_all, tmp_path_factory):
    """A small blend (``mlp+vote``, 2 epochs) saved from four folds, and the fifth fold's files."""
    folder = tmp_path_factory.mktemp("blend") / "model"
    return saved_on_four_folds(rruff_780, rruff_all, folder, "mlp+vote", Options(epochs=2))


def test_element_models_read_a_spectrum_from_past_an_edge_filters_cut(held_out_blend, monkeypatch):
    """Under a strong background an edge filter's cut is a step no baseline follows; an element
    model built now reads the spectrum from past it, as a library identifier does, and tells
    elements of unseen minerals there far better than read whole (as a folder of before)."""
    import dataclasses

    bundle, queries = held_out_blend
    assert bundle.info.filter_edge
    factors = (("noise", 20), ("fluorescence", 20), ("edge", "cut"))
    cut = degraded(queries, Condition("SNR 20, fluorescence 20x, cut", factors), seed=0)

    def macro(filter_edge: bool):
        monkeypatch.setattr(bundle, "info", dataclasses.replace(bundle.info, filter_edge=filter_edge))
        X, kept, _, quality = bundle.prepare(cut)
        Y, readable = element_truth(kept, bundle.estimator.elements_)
        scores = bundle.estimator.decision_scores(element_inputs(bundle, X, quality))[readable]
        return np.mean([roc_auc_score(Y[readable, j], scores[:, j]) for j in range(Y.shape[1])]), quality

    read_whole, _ = macro(False)
    past, quality = macro(True)
    assert np.mean([q.filter_edge_cm1 is not None for q in quality]) > 0.8
    assert past > read_whole + 0.08, (past, read_whole)
    # and each answer says where its spectrum was read from
    X, kept, _, quality = bundle.prepare(cut[:5])
    answers = predict_prepared(bundle, X, [s.source for s in kept], quality=quality)
    assert [a.quality["filter_edge_cm1"] for a in answers] == [
        None if q.filter_edge_cm1 is None else round(q.filter_edge_cm1, 1) for q in quality
    ]
    assert all(150 <= q.filter_edge_cm1 <= 350 for q in quality if q.filter_edge_cm1 is not None)


def test_element_choices_are_made_on_copies_read_as_the_model_reads_spectra(rruff_780, tmp_path, monkeypatch):
    """The thresholds and smoothing per quality block are chosen on validation copies read from
    past an edge filter's cut, as the model reads a user's spectrum (read whole, a cut copy's
    block chose thresholds far from the share present: ``benchmarks/RESULTS.md``)."""
    import ramanid.deploy as deploy

    read = []
    plain = deploy.degraded_validation

    def spy(spectra, val, preprocess, copies, rng, filter_edge=False):
        read.append(filter_edge)
        return plain(spectra, val, preprocess, copies, rng, filter_edge)

    monkeypatch.setattr(deploy, "degraded_validation", spy)
    spectra = rruff_780.spectra.subset(np.arange(400))
    task = Task.parse("elements")
    bundle = train_bundle(
        spectra, task=task, model="formula_vote", options=Options(), seed=0, folder=tmp_path / "m", log=lambda *_: None
    )
    assert bundle.info.filter_edge and read == [True]


def test_per_quality_thresholds_score_validation_spectra_against_the_training_part_only():
    from ramanid.deploy import _voting_on
    from ramanid.training.baselines import FormulaVote

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 16)), rng.integers(0, 2, size=(40, 2))
    vote = FormulaVote(elements=["Fe", "S"], val_fraction=0).fit(X, Y)
    library = vote.library_
    assert vote.neighbours(X[30:])[1][:, 0] == pytest.approx(1.0)  # with every spectrum, each finds itself
    with _voting_on(vote, X[:30], Y[:30]):
        positions, weights = vote.neighbours(X[30:])
        assert positions.max() < 30 and (weights[:, 0] < 0.99).all()
    assert vote.library_ is library  # restored


def test_validation_copies_are_degraded_as_their_files_would_be(rruff_780, rruff_all):
    """Noise added on the grid a file was measured on, then resampled, is the noise of that file
    degraded alike and read as `predict` reads it; on the model's grid it is not."""
    from ramanid.bundle.inputs import fitted_pipeline, prepare
    from ramanid.deploy import as_measured
    from ramanid.evaluation.degradation import degrade
    from ramanid.preprocessing import steps_of
    from ramanid.quality import noise_sd
    from ramanid.spectra import Spectrum

    spectra = rruff_780.spectra
    by_file = {s.meta["file"]: s for s in rruff_all[0]}
    rows = np.arange(0, len(spectra), max(1, len(spectra) // 60))
    noise = Condition("SNR 5", (("noise", 5),))
    copies = {"file": [], "native grid": [], "model grid": []}
    for i in rows:
        library = Spectrum(spectra.shifts, spectra.intensities[i].astype(np.float64), {})
        copies["file"].append(degrade(by_file[spectra.meta["file"].iloc[i]], noise, np.random.default_rng(i)))
        native = as_measured(library, spectra.meta.iloc[i])
        copies["native grid"].append(degrade(native, noise, np.random.default_rng(i)))
        copies["model grid"].append(degrade(library, noise, np.random.default_rng(i)))
    pipeline = fitted_pipeline(steps_of(spectra.info["preprocess"]), spectra.shifts)
    snr = {k: np.median(1 / noise_sd(prepare(v, spectra.shifts, "linear", pipeline)[0])) for k, v in copies.items()}
    assert abs(snr["native grid"] / snr["file"] - 1) < 0.15
    assert abs(snr["model grid"] / snr["file"] - 1) > 2 * abs(snr["native grid"] / snr["file"] - 1)
    unchanged = as_measured(library, {"mineral": "no grid recorded"})
    assert unchanged is library


def test_a_condition_reports_the_share_flagged_poor_and_their_top1():
    """On an identifier's own references as measured, noise at a ratio of 3 flags more spectra
    poor; the row says how many, and how many of them it still named right."""
    from ramanid.assess import evaluate_degraded

    bundle, known = _identifier_and_its_references()
    clean = evaluate_degraded(bundle, known, [], Condition("clean"))
    noisy = evaluate_degraded(bundle, known, [], Condition("n", (("noise", 3),)))
    assert clean["top1"] > 0.9 and noisy["poor"] > clean["poor"]  # this tiny model's 128 points read as noisy
    for row in (clean, noisy):
        assert (row["poor_top1"] is None) == (row["poor"] == 0)
    assert 0 <= noisy["poor_top1"] <= 1


def test_any_top1_is_the_share_named_right_by_the_model_or_a_search():
    from ramanid.assess import evaluate_degraded
    from ramanid.search import LibrarySearch

    bundle, known = _identifier_and_its_references()
    searches = {name: LibrarySearch(name).fit(bundle.library, bundle.labels) for name in ("derivative", "pearson")}
    row = evaluate_degraded(bundle, known, [], Condition("n", (("noise", 3),)), searches=searches)
    alone = [row["top1"], row["derivative top1"], row["pearson top1"]]
    assert max(alone) <= row["any top1"] <= min(1.0, sum(alone))
    assert row["any top1"] > max(alone)  # at this noise each names some spectra the others miss
    assert "any top1" not in evaluate_degraded(bundle, known, [], Condition("clean"))


def test_a_condition_records_its_reliability_table_so_that_folds_pool():
    from ramanid import confidence as conf
    from ramanid.assess import evaluate_degraded

    bundle, known = _identifier_and_its_references()
    row = evaluate_degraded(bundle, known, [], Condition("n", (("noise", 3),)))
    counts, stated, right = np.array(row["reliability"])
    assert counts.sum() == row["n_known"] and right.sum() == pytest.approx(row["top1"] * row["n_known"])
    assert 0 < stated.sum() < counts.sum()
    assert row["ece"] == conf.calibration_error_of(row["reliability"]) > 0


def _identifier_and_its_references(n: int = 40):
    """The small saved identifier, and about ``n`` of its own references as measured spectra."""
    from pathlib import Path

    from ramanid.spectra import Spectrum

    bundle = load_bundle(Path(__file__).parent / "data" / "bundles_v2" / "identifier")
    rows = range(0, len(bundle.library), max(1, len(bundle.library) // n))
    return bundle, [Spectrum(bundle.shifts, 1000 * bundle.library[i], {"mineral": bundle.labels[i]}) for i in rows]


def test_chemical_neighbours_share_most_of_their_elements():
    from ramanid.assess import chemical_neighbours
    from ramanid.chemistry import readable_elements

    calcite, dolomite = readable_elements("CaCO_3_"), readable_elements("CaMg(CO_3_)_2_")
    magnesite, siderite = readable_elements("MgCO_3_"), readable_elements("Fe^2+^CO_3_")
    assert chemical_neighbours(calcite, calcite) and chemical_neighbours(calcite, dolomite)  # 1 (aragonite) and 3/4
    assert not chemical_neighbours(magnesite, siderite)  # {C, O} of {Mg, Fe, C, O}: 1/2
    assert readable_elements("not a formula ###") is None and not chemical_neighbours(None, calcite)
    assert readable_elements("CaSO_4_&#183;2H_2_O") == {"Ca", "S", "O", "H"}  # RRUFF's entities read


def test_neighbour_figures_count_a_chemical_neighbour_of_the_truth():
    """Calcite references filed as aragonite (the same formula) are answered calcite: wrong, but a
    neighbour; quartz filed as anhydrite is wrong and far. As unknown minerals, the calcite ones
    are lured by a neighbour, quartz filed as halite is not."""
    from ramanid.assess import evaluate_degraded
    from ramanid.search import LibrarySearch
    from ramanid.spectra import Spectrum

    bundle, _ = _identifier_and_its_references()

    def filed(mineral: str, mineral_as: str, chemistry: str) -> list:
        rows = np.flatnonzero(bundle.labels == mineral)
        return [
            Spectrum(bundle.shifts, 1000 * bundle.library[i], {"mineral": mineral_as, "chemistry": chemistry})
            for i in rows
        ]

    known = filed("Calcite", "Aragonite", "CaCO_3_") + filed("Quartz", "Anhydrite", "CaSO_4_")
    unknown = filed("Calcite", "Unnamed carbonate", "CaCO_3_") + filed("Quartz", "Halite", "NaCl")
    searches = {"derivative": LibrarySearch("derivative").fit(bundle.library, bundle.labels)}
    row = evaluate_degraded(bundle, known, unknown, Condition("clean"), searches=searches)
    assert row["top1"] == 0 and row["neighbour top1"] == 0.5
    assert row["derivative top1"] == 0 and row["derivative neighbour top1"] == 0.5
    assert row["unknown near"] == 0.5 and {"auroc near", "auroc far", "caught near", "caught far"} <= set(row)
    assert "unknown near" not in evaluate_degraded(bundle, known, [], Condition("clean"))
