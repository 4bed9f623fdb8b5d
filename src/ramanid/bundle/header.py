"""``bundle.json``: its schema, checked before anything is built, and a typed view of it.

:func:`check_header` checks every field the code reads (the estimator's own fields through its
``check_state``); :class:`ModelInfo` is what callers read instead of the raw dictionary.
Folders of version 2 are upgraded as they are read (:func:`upgraded`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from ramanid import confidence as conf
from ramanid.bundle.folder import LIBRARY, WEIGHTS, BundleError
from ramanid.errors import PreprocessingError
from ramanid.mixture import METHOD as MIXTURE_METHOD
from ramanid.preprocessing import steps_of
from ramanid.preprocessing.grid import MAX_POINTS
from ramanid.preprocessing.smooth import is_smoothing_window
from ramanid.quality import (
    KEYED_AS_READ,
    KEYED_BY_INPUT,
    KEYED_MIDDLE_BACKGROUND,
    KEYED_WITH_BACKGROUND,
    SNR_BINS,
    calibration_keys,
)
from ramanid.training.registry import SAVED
from ramanid.training.saved import finite_list, is_finite, is_whole

#: the fit spaces older folders' mixture rules were chosen for (one reference per mineral)
OLDER_MIXTURE_FITS = ("intensity", "derivative")


def upgraded(header: dict, source) -> dict:
    """A version-2 header as version 3 writes it: the estimator names the whole model (a library
    identifier or a blend, which version 2 stored as their network plus a block), and the
    preprocessing is a list of steps (version 2 stored a step string).
    """
    if header.get("version") != 2:
        return header
    header = dict(header)
    if "identifier" in header:
        header["estimator"] = "LibraryIdentifier"
    elif "blend" in header:
        header["estimator"] = "NetworkAndVote"
    try:
        header["preprocess"] = steps_of(header.get("preprocess"))
    except PreprocessingError as exc:
        raise BundleError(f"{source}: field 'preprocess' cannot be read ({exc})") from exc
    return header


#: the calibration blocks a folder has for each way of keying them
BLOCKS = {
    KEYED_MIDDLE_BACKGROUND: 2 * len(SNR_BINS),
    KEYED_AS_READ: len(SNR_BINS),
    KEYED_WITH_BACKGROUND: 2 * len(SNR_BINS),
    KEYED_BY_INPUT: len(SNR_BINS),
}


def check_header(header: dict, source) -> None:
    """Types, ranges and lengths of every field that code reads, checked before anything is
    built; a :class:`BundleError` names the first wrong field and what was expected.
    """

    def fail(name: str, expected: str):
        raise BundleError(f"{source}: field {name!r} is {json.dumps(header.get(name))[:80]}: expected {expected}")

    if not is_whole(header.get("n_features"), 2, MAX_POINTS):
        fail("n_features", f"a whole number of points from 2 to {MAX_POINTS}")
    shifts = header.get("shifts")
    if not (finite_list(shifts, header["n_features"]) and all(b > a for a, b in zip(shifts, shifts[1:], strict=False))):
        fail("shifts", f"{header['n_features']} finite, increasing shifts")
    outputs = header.get("outputs")
    if not (isinstance(outputs, list) and outputs and all(is_whole(o, 1, 10**6) for o in outputs)):
        fail("outputs", "a list of network output counts")
    if not isinstance(header.get("params"), dict) or not isinstance(header["params"].get("model"), str):
        fail("params", "the estimator's parameters, with 'model'")
    if not isinstance(header.get("content"), dict) or set(header["content"]) != {WEIGHTS, LIBRARY}:
        fail("content", f"the SHA-256 of {WEIGHTS} and {LIBRARY}")
    if not isinstance(header.get("data", {}), dict):
        fail("data", "an object describing the training data")
    name = header.get("estimator")
    if not isinstance(name, str) or name not in SAVED:
        fail("estimator", f"one of {sorted(SAVED)}")
    task = header.get("task")
    if not isinstance(task, dict) or task.get("kind") != SAVED[name].kind:
        fail("task", f"{{'kind': {SAVED[name].kind!r}, ...}} (what a {name} answers)")
    ood = header.get("ood")
    if not (
        isinstance(ood, dict)
        and ood.get("score") in conf.UNKNOWN_SCORES
        and (ood.get("threshold") is None or is_finite(ood["threshold"]))
    ):
        fail("ood", f"{{'score': one of {list(conf.UNKNOWN_SCORES)}, 'threshold': a finite number or null, ...}}")
    calibration = header.get("calibration")
    if calibration is not None and not (
        isinstance(calibration, dict)
        and is_finite(calibration.get("temperature"))
        and calibration["temperature"] > 0
        and isinstance(calibration.get("conformal_scores"), list)
        and all(map(is_finite, calibration["conformal_scores"]))
    ):
        fail("calibration", "{'temperature': a positive number, 'conformal_scores': a list of numbers}")
    bins = len(SNR_BINS)
    keyed_by = ood.get("keyed_by")
    if keyed_by is not None and keyed_by not in BLOCKS:
        fail("ood", f"'keyed_by': one of {sorted(BLOCKS)}")
    by_quality = ood.get("by_quality")
    # one block per signal-to-noise bin; folders of 2026-12-04 and 05: again for a strong background
    blocks = (BLOCKS[keyed_by],) if keyed_by else (bins, 2 * bins)
    if by_quality is not None and not (
        isinstance(by_quality, list)
        and len(by_quality) in blocks
        and all(v is None or is_finite(v) for v in by_quality)
    ):
        counts = " or ".join(map(str, blocks))
        fail("ood", f"'by_quality': {counts} thresholds (finite or null), one per calibration block")
    if not isinstance(header.get("filter_edge", False), bool):
        fail("filter_edge", "true or false")
    # element models keyed by the input's bin until 2026-12-05; since, as they say (``element_keyed_by``)
    element_keyed_by = header.get("element_keyed_by", KEYED_BY_INPUT)
    if element_keyed_by not in BLOCKS:
        fail("element_keyed_by", f"one of {sorted(BLOCKS)}")
    element_blocks = BLOCKS[element_keyed_by]
    element_thresholds = header.get("element_thresholds_by_quality")
    if element_thresholds is not None and not (
        isinstance(element_thresholds, list)
        and len(element_thresholds) == element_blocks
        and all(t is None or finite_list(t, sum(header["outputs"])) for t in element_thresholds)
    ):
        fail(
            "element_thresholds_by_quality",
            f"{element_blocks} lists of one threshold per element (or null), one per quality block",
        )
    windows = header.get("element_smoothing_by_quality")
    if windows is not None and not (
        isinstance(windows, list)
        and len(windows) == element_blocks
        and all(is_smoothing_window(w, len(header["shifts"])) for w in windows)
    ):
        fail(
            "element_smoothing_by_quality",
            f"{element_blocks} smoothing windows (0, or an odd number of points from 3), one per quality block",
        )
    quality_calibration = (calibration or {}).get("by_quality")
    if quality_calibration is not None and not (
        isinstance(quality_calibration, list)
        and len(quality_calibration) in blocks
        and (by_quality is None or len(by_quality) == len(quality_calibration))
        and all(
            isinstance(b, dict)
            and is_finite(b.get("temperature"))
            and b["temperature"] > 0
            and isinstance(b.get("conformal_scores"), list)
            and all(map(is_finite, b["conformal_scores"]))
            for b in quality_calibration
        )
    ):
        fail(
            "calibration",
            f"'by_quality': {' or '.join(map(str, blocks))} blocks (as many as the unknown thresholds) of a positive "
            "temperature and conformal scores",
        )
    mixture = header.get("mixture")
    if mixture is not None and not (
        isinstance(mixture, dict)
        and is_finite(mixture.get("min_gain"))
        and 0 <= mixture["min_gain"] <= 1
        and (mixture.get("method") == MIXTURE_METHOD or mixture.get("representation") in OLDER_MIXTURE_FITS)
    ):
        fail(
            "mixture",
            f"{{'min_gain': the stopping rule, in [0, 1], 'method': {MIXTURE_METHOD!r}}} (or, in older folders, "
            f"'representation': one of {OLDER_MIXTURE_FITS})",
        )
    try:
        steps_of(header.get("preprocess"))
    except PreprocessingError as exc:
        fail("preprocess", f"a list of [step name, {{parameter: value}}] pairs, or null ({exc})")
    wrong = SAVED[name].check_state(header)
    if wrong is not None:
        fail(*wrong)


@dataclass(frozen=True)
class TaskInfo:
    """What the model answers: ``kind`` "label" (from ``column``) or "elements"."""

    kind: str
    column: str | None = None
    elements: tuple[str, ...] = ()
    chemistry: str = "ideal"
    positive: str | None = None


@dataclass(frozen=True)
class UnknownFlag:
    """The unknown score a model uses and the threshold above which a spectrum is flagged
    (None: no known validation spectrum set one, and the flag never fires); with
    ``by_quality``, one threshold per calibration block (:meth:`ModelInfo.calibration_keys`: a
    signal-to-noise bin of :data:`ramanid.quality.SNR_BINS`, in some older folders split again by
    the strength of the background),
    each set on degraded validation spectra of that quality (Mondrian calibration).
    """

    score: str
    threshold: float | None
    accept_known: float = conf.ACCEPT_KNOWN
    validation_auroc: dict = field(default_factory=dict)
    by_quality: tuple[float | None, ...] | None = None

    def flags(self, scores: np.ndarray, bins: np.ndarray | None = None) -> np.ndarray:
        """Whether each score is above its threshold (its bin's, where ``bins`` and the model have them)."""
        scores = np.asarray(scores, dtype=np.float64)
        thresholds = np.full(len(scores), np.inf if self.threshold is None else self.threshold)
        if self.by_quality is not None and bins is not None:
            thresholds = np.array([_or(self.by_quality[b], np.inf) for b in bins], dtype=np.float64)
        return scores > thresholds


@dataclass(frozen=True)
class Calibration:
    """The temperature of the class scores (Guo et al. 2017) and the conformal scores of the
    validation spectra (Sadinle et al. 2019), both fitted on held-out spectra of known classes;
    with ``by_quality``, a temperature and conformal scores per calibration block, fitted on
    degraded validation spectra of that quality (Mondrian conformal prediction: Vovk et al. 2005).
    """

    temperature: float = 1.0
    conformal_scores: tuple[float, ...] | None = None
    by_quality: tuple[tuple[float, tuple[float, ...]], ...] | None = None

    def probabilities(self, scores: np.ndarray, bins: np.ndarray | None = None) -> np.ndarray:
        if self.by_quality is None or bins is None:
            return conf.calibrated(scores, self.temperature)
        temperatures = np.array([self.by_quality[b][0] for b in bins])
        return conf.calibrated(scores / temperatures[:, None], 1.0)

    def answer_sets(self, proba: np.ndarray, confidence: float, bins: np.ndarray | None = None):
        """The conformal answer sets at ``confidence`` (None without conformal scores), each
        from its bin's scores where ``bins`` and the model have them.
        """
        if self.by_quality is not None and bins is not None:
            quantiles = {b: conf.conformal_quantile(self.by_quality[b][1], confidence) for b in set(bins)}
            return [conf.answer_sets(p[None, :], quantiles[b])[0] for p, b in zip(proba, bins, strict=True)]
        if self.conformal_scores is None:
            return None
        return conf.answer_sets(proba, conf.conformal_quantile(self.conformal_scores, confidence))


def _or(value, default):
    return default if value is None else value


@dataclass(frozen=True)
class ModelInfo:
    """The typed view of a checked ``bundle.json``."""

    estimator: str
    task: TaskInfo
    shifts: np.ndarray
    resampling: str
    preprocess: list
    ood: UnknownFlag
    calibration: Calibration
    data: dict
    validation: dict
    ramanid_version: str | None
    #: the mixture stopping rule chosen on validation mixtures (library identifiers; None where the
    #: folder has none, or one chosen for the single-reference fit of older folders)
    mixture_min_gain: float | None = None
    #: an element model's thresholds per quality block of its inputs (None: one set for all)
    element_thresholds_by_quality: tuple | None = None
    #: an element model's smoothing window per quality block of its inputs (0: none)
    element_smoothing_by_quality: tuple | None = None
    #: how an element model's quality blocks are keyed (:func:`ramanid.quality.calibration_keys`)
    element_keyed_by: str = KEYED_BY_INPUT
    #: how its calibration blocks are keyed (:func:`ramanid.quality.calibration_keys`)
    keyed_by: str = KEYED_MIDDLE_BACKGROUND
    #: whether spectra are read from past an edge filter's cut (:mod:`ramanid.preprocessing.edge`):
    #: library identifiers built since 2026-12-07, whose calibration copies are read so too, and
    #: element models built since then
    filter_edge: bool = False

    @classmethod
    def from_header(cls, header: dict) -> ModelInfo:
        task, ood, calibration = header["task"], header["ood"], header.get("calibration")
        return cls(
            estimator=header["estimator"],
            task=TaskInfo(
                kind=task["kind"],
                column=task.get("column"),
                elements=tuple(task.get("elements") or ()),
                chemistry=task.get("chemistry") or "ideal",
                positive=task.get("positive"),
            ),
            shifts=np.asarray(header["shifts"], dtype=np.float64),
            resampling=header.get("method", "linear"),
            preprocess=steps_of(header.get("preprocess")),
            ood=UnknownFlag(
                score=ood["score"],
                threshold=ood.get("threshold"),
                accept_known=ood.get("accept_known", conf.ACCEPT_KNOWN),
                validation_auroc=ood.get("validation_auroc") or {},
                by_quality=tuple(ood["by_quality"]) if ood.get("by_quality") else None,
            ),
            calibration=_calibration(calibration),
            data=header.get("data") if isinstance(header.get("data"), dict) else {},
            validation=header.get("validation") if isinstance(header.get("validation"), dict) else {},
            ramanid_version=header.get("ramanid_version"),
            mixture_min_gain=_mixture_min_gain(header.get("mixture")),
            element_thresholds_by_quality=tuple(header["element_thresholds_by_quality"])
            if header.get("element_thresholds_by_quality")
            else None,
            element_smoothing_by_quality=tuple(header["element_smoothing_by_quality"])
            if header.get("element_smoothing_by_quality")
            else None,
            keyed_by=_keyed_by(ood, calibration),
            element_keyed_by=header.get("element_keyed_by", KEYED_BY_INPUT),
            filter_edge=header.get("filter_edge", False),
        )

    def calibration_keys(self, bins: np.ndarray | None, quality: list | None) -> np.ndarray | None:
        """The calibration block of each input, as the folder's blocks are keyed
        (:func:`ramanid.quality.calibration_keys`, from the inputs' signal-to-noise ``bins`` and
        their ``quality`` estimates); None where the folder has no blocks.
        """
        if bins is None or not (self.ood.by_quality or self.calibration.by_quality):
            return bins
        return calibration_keys(bins, quality, self.keyed_by)

    def element_keys(self, bins: np.ndarray, quality: list | None) -> np.ndarray:
        """The quality block of each input of an element model (its thresholds and smoothing,
        :func:`ramanid.deploy.element_choices_by_quality`), keyed as the folder's are.
        """
        return calibration_keys(bins, quality, self.element_keyed_by)


def _keyed_by(ood: dict, calibration: dict | None) -> str:
    """How a folder's blocks are keyed: as it says, or, in folders that do not say, by the
    inputs' bins (one block per bin) or with a strong background (two per bin).
    """
    if ood.get("keyed_by"):
        return ood["keyed_by"]
    blocks = ood.get("by_quality") or (calibration or {}).get("by_quality") or ()
    return KEYED_WITH_BACKGROUND if len(blocks) == BLOCKS[KEYED_WITH_BACKGROUND] else KEYED_BY_INPUT


def _mixture_min_gain(block: dict | None) -> float | None:
    """The folder's mixture stopping rule, where it was chosen for :mod:`ramanid.mixture`'s method;
    older folders' rules (fits of one reference per mineral) are not on its scale: None.
    """
    return block["min_gain"] if block and block.get("method") == MIXTURE_METHOD else None


def _calibration(block: dict | None) -> Calibration:
    if not block:
        return Calibration()
    by_quality = block.get("by_quality")
    return Calibration(
        block["temperature"],
        tuple(block["conformal_scores"]),
        tuple((b["temperature"], tuple(b["conformal_scores"])) for b in by_quality) if by_quality else None,
    )
