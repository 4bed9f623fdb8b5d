"""Training a model for a folder: fit on every spectrum, calibrate on held-out ones, save.

- :func:`train_bundle`: any network (``ramanid train``), through the same recipe as
  cross-validation (:func:`~ramanid.training.recipe.fit_recipe`);
- :func:`train_identifier`: the library identifier (``ramanid library build``).

An internal validation split, never trained on, sets what the folder stores besides the weights:
the temperature of the probabilities (Guo et al. 2017), the conformal answer sets (Sadinle et
al. 2019), the element thresholds, and the unknown flag (:func:`ramanid.confidence.choose_unknown_score`).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ramanid import confidence as conf
from ramanid.bundle import Bundle, load_bundle, save_bundle
from ramanid.errors import RamanIdError
from ramanid.evaluation.metrics import element_metrics, multiclass_metrics
from ramanid.jsonable import json_ready
from ramanid.mixture import METHOD as MIXTURE_METHOD
from ramanid.models import user_models
from ramanid.preprocessing import steps_of
from ramanid.quality import KEYED_MIDDLE_BACKGROUND, KEYED_WITH_BACKGROUND, SNR_BINS, block_name, calibration_keys
from ramanid.search import References
from ramanid.spectra import Spectrum
from ramanid.targets import Task
from ramanid.training.baselines import CLASSICAL
from ramanid.training.blend import VOTE_SUFFIX
from ramanid.training.by_group import BY_GROUP
from ramanid.training.epo import EPO
from ramanid.training.factory import Options
from ramanid.training.identifier import LibraryIdentifier, input_snr_bins
from ramanid.training.recipe import fit_recipe

#: per task kind, the columns whose groups a saved model's validation split holds out whole, first
#: found first; element thresholds are meant for minerals the network has never seen, so an element
#: model is validated on whole minerals
VALIDATION_GROUPS = {"label": ("rruff_id", "group"), "elements": ("mineral", "rruff_id")}


def train_bundle(
    spectra, *, task: Task, model: str, options: Options, seed: int, folder: str | Path, log=print
) -> Bundle:
    """Train on all of ``spectra`` and save a model folder.

    An internal validation split, of whole specimens (``rruff_id``), whole groups (the ``group``
    column of ``ramanid build table --group``: cultures, patients), or for elements whole
    minerals, where the set has them, serves early stopping, the element thresholds, the
    calibration and the unknown flag. Holding out whole specimens leaves some minerals out of
    training altogether; the unknown flag uses the score of :data:`ramanid.confidence.UNKNOWN_SCORES`
    that best tells those from the others on validation, with the threshold that accepts 95% of
    the known validation spectra (so about 5% of new spectra of known minerals are flagged).
    """
    if model.endswith(BY_GROUP):
        raise RamanIdError(
            f"model {model!r} cannot be saved: it standardises each batch as one group, and a saved model "
            "answers spectra one by one; use it with 'ramanid cv'"
        )
    if model.endswith(EPO) and model.removesuffix(EPO) not in CLASSICAL:
        raise RamanIdError(
            f"model {model!r} cannot be saved: 'ramanid train' takes MODEL{EPO} for the classical models "
            f"{list(CLASSICAL)}; use a network with it in 'ramanid cv'"
        )
    if model.removesuffix(VOTE_SUFFIX) not in user_models() and model.removesuffix(EPO) not in CLASSICAL:
        raise RamanIdError(
            f"model {model!r} cannot be saved: 'ramanid train' takes the neural models {user_models()} "
            f"(and NETWORK{VOTE_SUFFIX} for elements) and the classical ones {list(CLASSICAL)}"
        )
    if options.ensemble > 1:
        raise RamanIdError("a saved model holds one network: train it with ensemble=1")
    task = task.resolved(spectra)
    spectra, y = task.labelled(spectra, log)
    grouped_by = next((column for column in VALIDATION_GROUPS[task.kind] if column in spectra.meta), None)
    groups = spectra.meta[grouped_by].astype(str).to_numpy() if grouped_by else None
    recipe = fit_recipe(
        spectra.intensities,
        y,
        np.arange(len(spectra)),
        name=model,
        task=task,
        options=options,
        seed=seed,
        shifts=spectra.shifts,
        groups=groups,
        saved=True,
    )
    _log_choices(recipe.choices, log)
    estimator, X = recipe.estimator, recipe.X
    val = estimator.validation_index_
    train = np.setdiff1d(np.arange(len(X)), val)
    if not len(val) or not len(train):
        raise RamanIdError(
            f"{len(X)} spectra are too few to hold out a validation part (it sets the calibration and the "
            "unknown flag): give more spectra"
        )
    meta = spectra.meta.copy()
    meta["label"] = (
        meta[task.column].astype(str) if task.column else meta.get("mineral", pd.Series(["?"] * len(X))).astype(str)
    )
    # the validation spectra are queried against the training part only, as new spectra will be
    estimator.attach(References(X[train], meta.iloc[train]))
    similarity = estimator.reference_similarity(X[val])
    preprocess = steps_of(spectra.info.get("preprocess", "minmax")) + steps_of(recipe.steps)
    # element models read spectra from past an edge filter's cut, as library identifiers do, and
    # make their choices per quality block on copies read so
    filter_edge = task.kind == "elements"
    calibration, element_fields = None, {}
    if task.kind == "elements":
        # a blend's vote keeps the validation spectra as references once fitted: its validation
        # scores are those of the choice, made with the other spectra as references
        scores = getattr(estimator, "validation_scores_", None)
        scores = estimator.decision_scores(X[val]) if scores is None else scores
        metrics = element_metrics(y[val], scores, estimator.thresholds_, task.elements)
        unknown = np.zeros(len(val), dtype=bool)
        element_fields = element_quality_fields(estimator, spectra, preprocess, X, y, val, seed, log, filter_edge)
    else:
        scores = estimator.decision_scores(X[val])
        codes = np.searchsorted(estimator.classes_, y[val])
        # a specimen-grouped split leaves some minerals out of training: the calibration is for
        # classes the network knows, so it is fitted on those spectra
        unknown = ~np.isin(y[val], y[train])
        calibration, ece = calibrate(scores, codes, ~unknown)
        proba = conf.calibrated(scores, calibration["temperature"])
        metrics = {**multiclass_metrics(y[val], proba, estimator.classes_), **ece}
    ood = _unknown_flag(estimator.unknown_evidence(X[val], scores, similarity), unknown, log)
    info = {
        "task": {
            "kind": task.kind,
            "column": task.column,
            "elements": list(task.elements),
            "chemistry": task.chemistry,
            "positive": task.positive,
        },
        "shifts": spectra.shifts.tolist(),
        "method": spectra.info.get("method", "linear"),
        "preprocess": preprocess,
        "data": {"n_spectra": len(X), "classes": int(meta["label"].nunique()), "built_with": spectra.info},
        "validation": _validation(val, grouped_by, metrics),
        "ood": ood,
        **({"filter_edge": True} if filter_edge else {}),
        **({"calibration": calibration} if calibration else {}),
        **element_fields,
        **({"tuned": recipe.choices["tune_scores"]} if "tune_scores" in recipe.choices else {}),
    }
    save_bundle(folder, estimator, info, References(X, meta))
    return load_bundle(folder)


def train_identifier(
    spectra, *, folder: str | Path, epochs: int = 60, seed: int = 0, quality_copies: int = 12, log=print
) -> Bundle:
    """Train a :class:`~ramanid.training.identifier.LibraryIdentifier` on every spectrum of
    ``spectra`` (labels from ``mineral``; validation held out by specimen, ``rruff_id``, where the
    set has it) and save it: every spectrum is a reference of the library.

    The validation spectra, queried against the training references only, set the temperature
    of the class scores, the conformal answer sets, and the unknown flag: one minus the best
    score, with the threshold that accepts 95% of the validation spectra of known minerals.
    With ``quality_copies``, each validation spectrum is also degraded that many times as real
    measurements degrade spectra (:func:`ramanid.evaluation.degradation.random_condition`) and
    read through the model's preprocessing; each signal-to-noise bin of those spectra (and, at
    SNR 5-50, its spectra under a strong background) gets its own temperature, conformal scores
    and unknown threshold (Mondrian calibration), so that a spectrum of any quality is flagged
    and covered at the stated rates.
    """
    labels = Task.parse("mineral").targets(spectra)[0]
    groups = spectra.meta["rruff_id"].astype(str).to_numpy() if "rruff_id" in spectra.meta else None
    identifier = LibraryIdentifier(epochs=epochs, random_state=seed).fit(spectra.intensities, labels, groups=groups)
    val = identifier.validation_index_
    train = np.setdiff1d(np.arange(len(spectra)), val)
    specimens = np.unique(groups if groups is not None else np.arange(len(spectra)), return_inverse=True)[1]
    scores, known = held_out_scores(identifier, spectra.intensities[val], val, specimens)
    calibration, metrics = calibrate(scores, identifier.reference_class_[val], known, IDENTIFIER_TEMPERATURE)
    evidence = conf.Evidence(best_score=scores.max(axis=1))
    ood = _unknown_flag(evidence, ~known, log=lambda _: None, only="best identifier score")
    if quality_copies and len(val) >= 2 * MIN_PER_BIN:
        by_quality = _quality_calibration(identifier, spectra, val, train, specimens, quality_copies, seed)
        calibration["by_quality"], ood["by_quality"], metrics["by_quality"], metrics["scoring_by_quality"] = by_quality
        ood["keyed_by"] = KEYED_MIDDLE_BACKGROUND
        log(
            "calibrated per signal-to-noise bin of the spectra as read, on degraded validation spectra: "
            + ", ".join(
                f"{block_name(b)} top-1 {m['top1']:.2f} (n {m['n_known']})"
                for b, m in enumerate(by_quality[2])
                if m["n_known"]
            )
        )
    rule, rules = choose_stopping_rule(identifier, spectra, val, seed) if len(val) >= 2 * MIN_PER_BIN else (None, {})
    meta = spectra.meta.copy()
    meta["label"] = labels
    info = {
        "task": {"kind": "label", "column": "mineral", "elements": []},
        **({"mixture": {"method": MIXTURE_METHOD, "min_gain": rule, "validation": rules}} if rule is not None else {}),
        "shifts": spectra.shifts.tolist(),
        "method": spectra.info.get("method", "linear"),
        "preprocess": steps_of(spectra.info.get("preprocess", "minmax")),
        "filter_edge": True,  # queries and calibration copies are read from past an edge filter's cut
        "data": {"n_spectra": len(spectra), "classes": int(len(identifier.classes_)), "built_with": spectra.info},
        "validation": _validation(val, "rruff_id" if groups is not None else None, metrics),
        "ood": ood,
        "calibration": calibration,
    }
    log(
        f"trained on {len(spectra)} spectra of {len(identifier.classes_)} minerals; alpha {identifier.alpha_} and "
        f"spectral score (power {identifier.spectral_.power:g}, derivative window {identifier.spectral_.window}) "
        f"chosen on {len(val)} held-out spectra"
    )
    save_bundle(folder, identifier, info, References(spectra.intensities, meta))
    return load_bundle(folder)


#: the fewest known validation spectra a signal-to-noise bin is calibrated on; fewer: the whole set's
MIN_PER_BIN = 30
#: how a library identifier's temperatures are fitted: by the Brier score, which one spectrum far
#: wrong moves less than the likelihood; on degraded validation copies judged across specimens the
#: likelihood's left the answers underconfident (``benchmarks/bench_temperature.py``)
IDENTIFIER_TEMPERATURE = conf.fit_temperature_brier
#: the mixture stopping rules a library identifier chooses among on its validation mixtures
MIN_GAINS = (0.02, 0.035, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25)
#: the most single-mineral validation spectra the chosen stopping rule may give a second mineral
MAX_SPURIOUS = 0.05
#: validation mixtures of each number of minerals (1, 2, 3)
VALIDATION_MIXTURES = 150


def choose_stopping_rule(identifier, spectra, rows: np.ndarray, seed: int = 0) -> tuple[float, dict]:
    """``(min_gain, figures)``: the mixture stopping rule (:mod:`ramanid.mixture`), the smallest
    of :data:`MIN_GAINS` that names a second mineral in at most :data:`MAX_SPURIOUS` of
    single-mineral validation spectra (the largest where none does), so that a lone mineral gets
    a spurious component at no more than that rate and mixtures lose as few minerals as it
    allows; ``figures`` gives each rule's exact-set rate by number of minerals and its spurious
    rate. Validation mixtures are 1, 2 and 3 spectra of different minerals among the validation
    ``rows`` (fractions from 10/90 to 50/50; minerals the library also holds on other specimens),
    every other one degraded as a good measurement is (the protocol's "microscope, good"), read
    through the model's preprocessing as measured spectra are and analysed against the library
    without the mixture's own specimens.
    """
    from ramanid.bundle.inputs import fitted_pipeline, prepare
    from ramanid.evaluation.degradation import COMBINATIONS, Condition, degrade
    from ramanid.evaluation.mixtures import make_mix
    from ramanid.mixture import library_path, named

    rng = np.random.default_rng(seed)
    labels = identifier.labels_
    specimens = spectra.meta["rruff_id"].astype(str).to_numpy() if "rruff_id" in spectra.meta else labels
    # only minerals the library also holds on other specimens can be named once a mixture's own are left out
    specimens_of = {}
    for label, specimen in zip(labels, specimens, strict=True):
        specimens_of.setdefault(label, set()).add(specimen)
    rows = np.array([r for r in rows if len(specimens_of[labels[r]]) > 1])
    pipeline = fitted_pipeline(steps_of(spectra.info.get("preprocess", "minmax")), spectra.shifts)
    weights = {1: [(1.0,)], 2: [(0.5, 0.5), (0.3, 0.7), (0.1, 0.9)], 3: [(1 / 3, 1 / 3, 1 / 3), (0.2, 0.3, 0.5)]}
    good = Condition("microscope, good", tuple(COMBINATIONS["microscope, good"].items()))
    found = {gain: {count: [] for count in (1, 2, 3)} for gain in MIN_GAINS}
    for count in (1, 2, 3):
        for k in range(VALIDATION_MIXTURES):
            picked = []
            for row in rng.permutation(rows):
                if labels[row] not in {labels[p] for p in picked}:
                    picked.append(row)
                if len(picked) == count:
                    break
            if len(picked) < count:
                break
            parts = [
                Spectrum(spectra.shifts, spectra.intensities[r].astype(np.float64), {"mineral": labels[r]})
                for r in picked
            ]
            mix = make_mix(parts, weights[count][k % len(weights[count])], "validation mixture").spectrum
            measured = degrade(mix, good, rng) if k % 2 else mix
            X, kept, _, _ = prepare(
                [measured], spectra.shifts, spectra.info.get("method", "linear"), pipeline, filter_edge=True
            )
            if not kept:
                continue
            own = np.isin(specimens, specimens[picked])
            similarity = identifier.similarity(X, excluded=own[None, :])[0]
            scores = identifier.best_per_class(similarity[None, :], identifier.reference_class_)[0]
            path, residuals, _ = library_path(identifier, X[0], scores, similarity, 3, excluded=own)
            for gain in MIN_GAINS:
                names = {identifier.classes_[c] for c in named(path, residuals, gain, scores)}
                found[gain][count].append((names == set(labels[picked]), len(names) > count))
    figures = {
        str(gain): {
            "exact": {str(c): float(np.mean([e for e, _ in v])) if v else float("nan") for c, v in by_count.items()},
            "spurious": float(np.mean([s for _, s in by_count[1]])) if by_count[1] else float("nan"),
        }
        for gain, by_count in found.items()
    }
    allowed = [gain for gain in MIN_GAINS if figures[str(gain)]["spurious"] <= MAX_SPURIOUS]
    return (allowed[0] if allowed else MIN_GAINS[-1]), figures


class DegradedValidation(NamedTuple):
    """Validation spectra read as files: the inputs, each input's row of the set, its quality
    estimate as read and the name of the condition that degraded it ("clean" for none); and the
    inputs read whole, where a copy was read from past an edge filter's cut (the same rows).
    """

    inputs: np.ndarray
    rows: np.ndarray
    quality: list
    conditions: np.ndarray
    whole: np.ndarray


def degraded_validation(
    spectra, val: np.ndarray, preprocess: list, copies: int, rng, filter_edge: bool = False
) -> DegradedValidation:
    """The spectra of rows ``val``, clean and degraded ``copies`` times each by random
    conditions of the degradation protocol, read through ``preprocess`` as ``predict`` reads a
    file (inputs that could not be read are left out); with ``filter_edge``, as it reads one for a
    library identifier, from past an edge filter's cut, and read whole again where they were cut
    (a copy without a cut reads the same).
    """
    from ramanid.bundle.inputs import fitted_pipeline, prepare
    from ramanid.evaluation.degradation import degrade, random_condition

    measured = []
    for i in val:  # each copy's file names its validation row
        clean = Spectrum(
            spectra.shifts, spectra.intensities[i].astype(np.float64), {"file": str(i), "condition": "clean"}
        )
        native = as_measured(clean, spectra.meta.iloc[i])
        measured.append(clean)
        for _ in range(copies):
            condition = random_condition(rng)
            copy = degrade(native, condition, rng)
            measured.append(Spectrum(copy.shifts, copy.intensities, {**copy.meta, "condition": condition.name}))
    pipeline = fitted_pipeline(preprocess, spectra.shifts)
    method = spectra.info.get("method", "linear")
    inputs, kept, _, quality = prepare(measured, spectra.shifts, method, pipeline, filter_edge)
    whole = inputs.copy() if filter_edge else inputs
    cut = [i for i, q in enumerate(quality) if q.filter_edge_cm1 is not None]
    if cut:
        again = prepare([kept[i] for i in cut], spectra.shifts, method, pipeline)
        read = {id(s): x for s, x in zip(again.kept, again.X, strict=True)}
        for i in cut:  # one whose whole read fails keeps its cut one
            whole[i] = read.get(id(kept[i]), whole[i])
    rows = np.array([int(s.meta["file"]) for s in kept], dtype=int)
    conditions = np.array([s.meta["condition"] for s in kept], dtype=object)
    return DegradedValidation(inputs, rows, quality, conditions, whole)


def as_measured(spectrum, meta) -> Spectrum:
    """``spectrum`` (on the model's grid) on the grid its file was measured on, where ``meta``
    gives it (``n_points`` evenly over ``shift_min``-``shift_max``, as a RRUFF build records):
    noise added point by point there, then resampled, is the noise a measured file brings.
    """
    try:
        n, low, high = int(meta["n_points"]), float(meta["shift_min"]), float(meta["shift_max"])
    except (KeyError, TypeError, ValueError):
        return spectrum
    inside = max(low, spectrum.shifts[0]), min(high, spectrum.shifts[-1])
    if not (n >= 2 and high > low and inside[1] > inside[0]):
        return spectrum
    shifts = np.linspace(*inside, max(2, round(n * (inside[1] - inside[0]) / (high - low))))
    return Spectrum(shifts, np.interp(shifts, spectrum.shifts, spectrum.intensities), spectrum.meta)


def held_out_scores(identifier, X, rows, specimens: np.ndarray, chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """``(class scores, known)`` of validation inputs ``X`` of library rows ``rows``, each against
    the whole library but the references of its own specimen (``specimens``: a code per library
    row), as a held-out specimen meets the saved library: against the training part alone, a
    mineral also loses its other validation specimens, so the model would be calibrated on
    queries harder than a user's. ``known``: its mineral has a reference elsewhere.
    """
    scores = np.empty((len(X), len(identifier.classes_)), dtype=np.float32)
    for start in range(0, len(X), chunk):
        part = slice(start, start + chunk)
        own = specimens[rows[part]][:, None] == specimens[None, :]
        similarity = identifier.similarity(X[part], excluded=own)
        scores[part] = identifier.best_per_class(similarity, identifier.reference_class_)
    known = np.isfinite(scores[np.arange(len(X)), identifier.reference_class_[rows]])
    scores[~np.isfinite(scores)] = -1.0  # minerals with no other reference
    return scores, known


def _quality_calibration(identifier, spectra, val, train, specimens, copies: int, seed: int):
    """``(calibration blocks, thresholds, figures, scoring figures)``: the first three per
    calibration block, the signal-to-noise bin of the spectrum as read, then again for a strong
    background (:func:`ramanid.quality.calibration_keys`); the last per signal-to-noise bin of
    the inputs, which the scoring choices are made for.

    Each validation spectrum, clean and degraded ``copies`` times, is read through the model's
    preprocessing (:func:`degraded_validation`). Half of the validation specimens
    choose each bin's spectral score and alpha (:meth:`LibraryIdentifier.adapt_to_quality`,
    against the training references; their copies read whole, not from past a filter's cut);
    the other half, scored with those choices against the
    library but their own specimens (:func:`held_out_scores`), set each block's temperature,
    conformal scores and unknown threshold, so that no calibration spectrum took part in a choice.
    Unknown thresholds leave out the copies a measurement cannot give
    (:func:`ramanid.evaluation.degradation.measurable`) where a block has enough others. A block
    with too few spectra takes its bin's, and a bin's the whole set's.
    """
    from ramanid.evaluation.degradation import measurable

    labels = identifier.labels_
    rng = np.random.default_rng(seed)
    X, rows, quality, names, whole = degraded_validation(
        spectra, val, steps_of(spectra.info.get("preprocess", "minmax")), copies, rng, filter_edge=True
    )
    held = np.unique(specimens[rows])
    choosing = np.isin(specimens[rows], rng.permutation(held)[: len(held) // 2])
    # the choices are made on the same copies read whole: read from past an edge filter's cut, the
    # cut copies fall into the noisiest bins, whose choices then followed them and lost 1-2 points
    # top-1 on noise alone (benchmarks/RESULTS.md, "edge filter's cut")
    adapted = identifier.adapt_to_quality(whole[choosing], labels[rows[choosing]], train)
    X, rows, measured = X[~choosing], rows[~choosing], measurable(names[~choosing])
    keys = calibration_keys(input_snr_bins(X), [q for q, c in zip(quality, choosing, strict=True) if not c])
    scores, known = held_out_scores(identifier, X, rows, specimens)
    codes = identifier.reference_class_[rows]
    unknown_score = 1 - scores.max(axis=1)

    def fitted(inside: np.ndarray, least: int = MIN_PER_BIN):
        """The block and unknown threshold of the calibration spectra ``inside``, or None if too few."""
        if (inside & known).sum() < least:
            return None
        block, _ = calibrate(scores[inside], codes[inside], known[inside], IDENTIFIER_TEMPERATURE)
        return block, unknown_threshold(unknown_score[inside], known[inside], measured[inside], least)

    everything = fitted(np.ones(len(X), dtype=bool), least=1)
    blocks, thresholds, figures = [], [], []
    n = len(SNR_BINS)
    for b in range(2 * n):  # each bin, then its strong-background spectra's, which fall back on the bin's
        inside = keys == b
        block, threshold = fitted(inside) or (everything if b < n else (blocks[b - n], thresholds[b - n]))
        blocks.append(block)
        thresholds.append(threshold)
        right = inside & known
        top1 = np.mean(np.argmax(scores[right], axis=1) == codes[right]) if right.any() else np.nan
        figures.append(
            {"snr_from": SNR_BINS[b % n], "strong_background": b >= n, "n_known": int(right.sum()), "top1": float(top1)}
        )
    return blocks, thresholds, figures, adapted


def unknown_threshold(unknown_score: np.ndarray, known: np.ndarray, measured: np.ndarray, least: int) -> float:
    """The unknown score that :data:`ramanid.confidence.ACCEPT_KNOWN` of the known calibration
    copies stay below, set on the copies a measurement can give (``measured``) where there are at
    least ``least`` of them, else on every known copy.
    """
    judged = known & measured
    judged = judged if judged.sum() >= least else known
    return float(np.quantile(unknown_score[judged], conf.ACCEPT_KNOWN))


#: how an element model's quality blocks are keyed: the signal-to-noise bin of the spectrum as
#: read, and a strong background apart at every ratio (a microscope's spectra under a background
#: read at SNR 50 and more, and would otherwise take the clean spectra's thresholds); chosen on
#: inner folds of validation minerals over the identifier's keys (``benchmarks/RESULTS.md``)
ELEMENT_KEYED_BY = KEYED_WITH_BACKGROUND
#: the smoothing windows (points; 0: none) an element model's noisier inputs may choose among
SMOOTHING_WINDOWS = (0, 7, 11, 15, 21, 31)


def element_quality_fields(
    estimator, spectra, preprocess: list, X, Y, val, seed: int, log=print, filter_edge: bool = False
) -> dict:
    """The fields of ``bundle.json`` that hold an element model's choices per quality block
    (:func:`element_choices_by_quality`; none where no block has enough spectra), logged.
    """
    thresholds, windows = element_choices_by_quality(estimator, spectra, preprocess, X, Y, val, seed, filter_edge)
    if thresholds is None:
        return {}
    blocks = [block_name(b) for b, t in enumerate(thresholds) if t is not None]
    log(f"element thresholds chosen per quality block ({', '.join(blocks)}) on degraded held-out minerals")
    fields = {"element_keyed_by": ELEMENT_KEYED_BY, "element_thresholds_by_quality": thresholds}
    if windows:
        blocks = [f"{w} points ({block_name(b)})" for b, w in enumerate(windows) if w]
        log(f"noisier inputs smoothed over {', '.join(blocks)}, chosen on degraded held-out minerals")
        fields["element_smoothing_by_quality"] = windows
    return fields


def element_choices_by_quality(
    estimator,
    spectra,
    preprocess: list,
    X: np.ndarray,
    Y: np.ndarray,
    val: np.ndarray,
    seed: int,
    filter_edge: bool = False,
    copies: int = 4,
) -> tuple[list | None, list | None]:
    """``(thresholds, windows)`` per quality block of an element model's inputs, chosen on its
    validation spectra (whole minerals it never trained on), clean and degraded ``copies`` times
    each by conditions of the degradation protocol, read through the model's ``preprocess`` (from
    past an edge filter's cut with ``filter_edge``, as the model then reads spectra: chosen on
    copies read whole, a cut spectrum's block reported elements far more often than they occur)
    and scored against the training part's references only.

    The blocks (:data:`ELEMENT_KEYED_BY`, :func:`ramanid.quality.calibration_keys`) are the
    signal-to-noise bins of the spectra as read, each split again where the background is
    strong. Each block but the top bin's without a strong background (where clean spectra fall)
    smooths its inputs by the window of :data:`SMOOTHING_WINDOWS` whose macro ROC AUC is best there
    (:func:`~ramanid.preprocessing.smooth.smoothed_in_range`): the model was trained on clean
    spectra. Then each block's thresholds are chosen by the model's own rule on its scores: noise
    and background move an element model's scores, so one threshold for every quality would
    report some elements far more often than they occur in poorer spectra, and others never. A
    block with fewer than :data:`MIN_PER_BIN` spectra keeps the model's own thresholds and no
    smoothing, as does an element with one class in a block; None when no block has enough.
    Keyed so rather than by the input's own bin, the largest gap between an element's reported and
    true share in one condition fell on inner folds of validation minerals (``benchmarks/RESULTS.md``).
    """
    from ramanid.holdout import DEFAULT_RULE, choose_thresholds, macro_roc_auc
    from ramanid.preprocessing.smooth import smoothed_in_range

    rng = np.random.default_rng(seed)
    inputs, rows, quality, _, _ = degraded_validation(spectra, val, preprocess, copies, rng, filter_edge)
    train = np.setdiff1d(np.arange(len(X)), val)
    keys = calibration_keys(input_snr_bins(inputs), quality, ELEMENT_KEYED_BY)
    base = np.asarray(estimator.thresholds_, dtype=np.float64)
    rule = getattr(estimator, "threshold", DEFAULT_RULE)
    thresholds, windows = [], []
    with _voting_on(estimator, X[train], Y[train]):
        for b in range(2 * len(SNR_BINS)):  # each bin, then its strong-background spectra's
            inside = keys == b
            if inside.sum() < MIN_PER_BIN:
                thresholds.append(None)
                windows.append(0)
                continue
            truth = Y[rows[inside]]
            tried = [w for w in SMOOTHING_WINDOWS if w < inputs.shape[1]] if b != len(SNR_BINS) - 1 else [0]
            scored = {w: estimator.decision_scores(smoothed_in_range(inputs[inside], w)) for w in tried}
            best = max(tried, key=lambda w: (np.nan_to_num(macro_roc_auc(truth, scored[w]), nan=-1.0), -w))
            two_classes = (truth.min(axis=0) == 0) & (truth.max(axis=0) == 1)
            chosen = np.where(two_classes, choose_thresholds(truth, scored[best], rule, share=Y.mean(axis=0)), base)
            thresholds.append([float(t) for t in chosen])
            windows.append(int(best))
    if all(t is None for t in thresholds):
        return None, None
    return thresholds, (windows if any(windows) else None)


@contextmanager
def _voting_on(estimator, X, Y):
    """Within the block, the formula vote of ``estimator`` (itself, a blend's, or a saved one)
    reads only the references ``X`` with element presence ``Y``; other estimators are untouched.
    """
    from ramanid.training.baselines import FormulaVote, MeanOfVotes

    found = (estimator, getattr(estimator, "vote_", None), getattr(estimator, "model_", None))
    vote = next((v for v in found if isinstance(v, (FormulaVote, MeanOfVotes))), None)
    if vote is None:
        yield
        return
    members = vote.votes if isinstance(vote, MeanOfVotes) else [vote]
    saved = [(member.library_, member.presence_) for member in members]
    vote.keep(X, Y)
    try:
        yield
    finally:
        for member, (library, presence) in zip(members, saved, strict=True):
            member.library_, member.presence_ = library, presence


def calibrate(
    scores: np.ndarray, codes: np.ndarray, known: np.ndarray, fit_temperature=conf.fit_temperature
) -> tuple[dict, dict]:
    """``(calibration, metrics)`` from validation class scores and true class indices ``codes``,
    fitted on the ``known`` rows (classes the model was trained on): the temperature (Guo et al.
    2017; by the likelihood, or ``fit_temperature``), the sorted conformal scores of those spectra
    (Sadinle et al. 2019), and the expected calibration error before and after.
    """
    scores, codes = scores[known], codes[known]
    temperature = fit_temperature(scores, codes)
    proba = conf.calibrated(scores, temperature)
    calibration = {
        "temperature": temperature,
        "conformal_scores": np.sort(conf.conformity_scores(proba, codes)).tolist(),
    }
    metrics = {
        "ece_before": conf.expected_calibration_error(conf.calibrated(scores, 1.0), codes),
        "ece_after": conf.expected_calibration_error(proba, codes),
    }
    return calibration, metrics


def _unknown_flag(evidence: conf.Evidence, unknown: np.ndarray, log, only: str | None = None) -> dict:
    """The ``ood`` block: the unknown score that best tells the ``unknown`` validation spectra from
    the others (or ``only``), and its threshold.
    """
    candidates = conf.unknown_candidates(evidence)
    if only is not None:
        candidates = {only: candidates[only]}
    name, threshold, auroc = conf.choose_unknown_score(candidates, unknown)
    if threshold is None:
        log("warning: no known validation spectrum to set the unknown flag's threshold: it will never fire")
    log(
        f"unknown flag: {name} (validation AUROC {auroc[name]:.3f} on {int(unknown.sum())} "
        "spectra of minerals left out of training)"
        if auroc
        else f"unknown flag: {name}"
    )
    return {
        "score": name,
        "threshold": threshold,
        "accept_known": conf.ACCEPT_KNOWN,
        "validation_auroc": auroc,
        "validation_unknown_spectra": int(np.sum(unknown)),
    }


def _validation(val: np.ndarray, grouped_by: str | None, metrics: dict) -> dict:
    """The ``validation`` block: its rows (positions in the library), how they were held out, and
    the model's figures on them.
    """
    return {"n_spectra": int(len(val)), "grouped_by": grouped_by, "index": val.tolist(), "metrics": json_ready(metrics)}


def _log_choices(choices: dict, log) -> None:
    if "model_chosen" in choices:
        untried = choices.get("model_untried")
        left = f" (the budget left {', '.join(untried)} untried)" if untried else ""
        log(f"model chosen by inner cross-validation: {choices['model_chosen']}{left}")
    if "preprocess_scores" in choices:
        log(
            f"preprocessing chosen by inner cross-validation: {choices['preprocess']!r} "
            f"({json.dumps(choices['preprocess_scores'])})"
        )
    if "tuned" in choices:
        log(
            f"options chosen by inner cross-validation: {json.dumps(choices['tuned'])} "
            f"(every score: {json.dumps(choices['tune_scores'])})"
        )
