"""Classical models as saved models: ``ramanid train --model lr`` (or svm, auto, ...) writes a
folder that ``predict``, ``serve`` and the unknown flag read as they read a network's.

- :class:`SavedClassifier`: one of the label baselines of :func:`~ramanid.training.baselines.classical_model`;
- :class:`SavedElements`: :class:`~ramanid.training.baselines.ClassicalElementIdentifier` or
  :class:`~ramanid.training.baselines.FormulaVote` for elements.

Each is fitted on the training part of an internal validation split (whole groups held out, as
for the networks), which then sets the folder's calibration, thresholds and unknown flag. The
fitted model is stored in skops' secure format (no pickle), as bytes in the folder's
safetensors file; loading refuses any type outside :data:`TRUSTED` instead of building it.
"""

from __future__ import annotations

import zipfile

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ramanid.confidence import Evidence
from ramanid.errors import ModelError
from ramanid.holdout import validation_split
from ramanid.search import References
from ramanid.training.baselines import (
    CLASSICAL,
    ELEMENTS_ONLY,
    AutoClassifier,
    ClassicalElementIdentifier,
    FormulaVote,
    classical_model,
)
from ramanid.training.epo import EPO, Orthogonalised, project_out
from ramanid.training.saved import Attribution, ElementAnswers, SavedModel, class_target, finite_list

#: the types beyond skops' own trusted ones that ramanid's classical models hold; a stored model
#: with any other type is refused, never built
TRUSTED = (
    "ramanid.training.baselines.AutoClassifier",
    "ramanid.training.epo.Orthogonalised",
    "ramanid.training.baselines.StackedClassifier",
    "ramanid.training.baselines.ClassicalElementIdentifier",
    "ramanid.training.baselines.FormulaVote",
    "ramanid.search.LibrarySearch",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils._bunch.Bunch",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "ramanid.training.baselines.RidgeSoftmax",
    "aeon.transformations.collection.convolution_based._minirocket.MiniRocket",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.basic.Booster",
    "collections.OrderedDict",
)
#: the name of the stored model's bytes in the folder's tensors
SKOPS_TENSOR = "skops"
#: the smallest probability whose logarithm is a class score (log 0 is not a number)
MIN_PROBABILITY = 1e-12


class _Stored(BaseEstimator, SavedModel):
    """What both saved classical models share: the internal split, the skops state."""

    transductive = False

    def __init__(self, model="lr", val_fraction=0.2, random_state=None):
        self.model = model
        self.val_fraction = val_fraction
        self.random_state = random_state

    def _params(self) -> dict:
        return {name: getattr(self, name) for name in ("model", "val_fraction", "random_state")}

    def get_state(self) -> tuple[dict, dict]:
        """``(header, tensors)``: the parameters in the header, the fitted model as skops bytes."""
        import skops.io as sio  # imported when used: it costs every command half a second

        check_is_fitted(self, "model_")
        data = np.frombuffer(sio.dumps(self.model_), dtype=np.uint8).copy()
        header = {
            "estimator": type(self).__name__,
            "params": self._params(),
            "n_features": int(self.n_features_in_),
            "n_networks": 0,
            "outputs": [len(self.output_names)],
            "classes": [str(c) for c in getattr(self, "classes_", [])],
            "thresholds": [float(t) for t in getattr(self, "thresholds_", [])],
        }
        return header, {SKOPS_TENSOR: torch.from_numpy(data)}

    @classmethod
    def from_state(cls, header: dict, tensors: dict, references: References | None = None, source: str = "state"):
        """The fitted model :meth:`get_state` stored; a :class:`ModelError` for a type outside
        :data:`TRUSTED` or a model that does not fit the header.
        """
        params = header["params"]
        unknown = sorted(set(params) - set(cls._get_param_names()))
        if unknown:
            raise ModelError(f"{source}: unknown parameters {unknown} for {cls.__name__}")
        if SKOPS_TENSOR not in tensors or tensors[SKOPS_TENSOR].dtype != torch.uint8:
            raise ModelError(f"{source}: the classical model's bytes ({SKOPS_TENSOR!r}) are missing")
        data = tensors[SKOPS_TENSOR].numpy().tobytes()
        import skops.io as sio

        try:
            untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED))
            fitted = None if untrusted else sio.loads(data, trusted=list(TRUSTED))  # nothing untrusted is built
        except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as exc:  # damaged or foreign bytes
            raise ModelError(f"{source}: the stored classical model cannot be read ({str(exc)[:200]})") from exc
        if untrusted:
            raise ModelError(f"{source}: the stored model holds types ramanid does not trust: {untrusted[:5]}")
        estimator = cls(**params)
        estimator.model_, estimator.n_features_in_ = fitted, int(header["n_features"])
        estimator._restore(header, source)
        return estimator.attach(references) if references is not None else estimator

    def _restore(self, header: dict, source: str) -> None:  # pragma: no cover - each kind says
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict_proba(validate_data(self, X, dtype=np.float64, reset=False))


def is_label_model(name) -> bool:
    """Whether ``name`` is a classical label model, alone or as ``MODEL+epo``."""
    base = name.removesuffix(EPO) if isinstance(name, str) else None
    return base in CLASSICAL and base not in ELEMENTS_ONLY


class SavedClassifier(ClassifierMixin, _Stored):
    """A classical label model (``lr``, ``svm``, ``auto``, ..., or one of them as ``MODEL+epo``) as
    a saved model; its class scores are log-probabilities, which the folder's temperature scales as
    it scales logits. ``budget``: seconds that ``auto`` may take to choose.
    """

    def __init__(self, model="lr", val_fraction=0.2, budget=None, random_state=None):
        super().__init__(model, val_fraction, random_state)
        self.budget = budget

    def _params(self) -> dict:
        return {**super()._params(), "budget": self.budget}

    @classmethod
    def check_state(cls, header: dict) -> tuple[str, str] | None:
        """``(field, what was expected)`` for the first field of a stored state that is wrong, or None."""
        classes = header.get("classes")
        if not (
            isinstance(classes, list) and len(classes) == header["outputs"][0] and len(set(classes)) == len(classes)
        ):
            return "classes", f"{header['outputs'][0]} different class names"
        if not is_label_model(header["params"]["model"]):
            return "params", "a classical label model's name"
        return None

    def fit(self, X, y, groups=None):
        """Fit :func:`classical_model` ``model`` on the training part of the internal split."""
        if not is_label_model(self.model):
            labels = sorted(set(CLASSICAL) - set(ELEMENTS_ONLY))
            raise ModelError(f"unknown classical model {self.model!r}: expected one of {labels} (or MODEL{EPO})")
        from ramanid.training.factory import fit_estimator

        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        train, self.validation_index_ = validation_split(len(X), self.val_fraction, self.random_state or 0, y, groups)
        model = classical_model(self.model.removesuffix(EPO), random_state=self.random_state, budget=self.budget)
        if self.model.endswith(EPO):
            model = Orthogonalised(model)
        fit_estimator(model, X[train], y[train], None if groups is None else np.asarray(groups)[train])
        auto = _auto(model)
        if auto is not None:
            self.chosen_, self.untried_ = auto.chosen_, auto.untried_
        self.model_, self.classes_ = model, model.classes_
        return self

    def _restore(self, header: dict, source: str) -> None:
        self.classes_ = np.asarray(self.model_.classes_).astype(str)
        if self.classes_.tolist() != header["classes"]:
            raise ModelError(f"{source}: the stored model's classes do not match the header's")

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def decision_scores(self, X) -> np.ndarray:
        return np.log(np.clip(self.predict_proba(X), MIN_PROBABILITY, None))

    def unknown_evidence(self, X, scores, similarity) -> Evidence:
        return Evidence(logits=scores, library_similarity=similarity.max(axis=1, initial=-np.inf))

    def attribution(self, X, target: str | None = None) -> Attribution:
        """Where the chosen model is linear in the spectrum (``lr``, ``pca_lr``, or ``auto`` that
        chose ``lr``; any of them as ``MODEL+epo`` too), a torch module of its exact logits, whose
        integrated gradients from a zero spectrum are the coefficients times the spectrum.
        """
        fitted, projection, auto = self.model_, None, _auto(self.model_)
        if isinstance(fitted, Orthogonalised):  # a linear map in front: x minus its nuisance directions
            fitted, projection = fitted.base_, fitted.directions_
        module = linear_logits(fitted if auto is None else auto.model_)
        if module is not None and projection is not None and len(projection):
            module = torch.nn.Sequential(_projection(projection), module).eval()
        if module is None:
            raise ModelError(
                f"{self.model} is not linear in the spectrum: it has no attribution; explain lr or a network"
            )
        target, output, probability = class_target(self, X, target)
        name = self.model if auto is None else f"{self.model} ({auto.chosen_})"
        return Attribution(module, output, target, f"class {target}: {name} probability {probability:.2f}")


class SavedElements(ElementAnswers, _Stored):
    """A classical element model as a saved model: ``formula_vote``, or one ``model`` classifier
    per element (:class:`~ramanid.training.baselines.ClassicalElementIdentifier`).
    """

    def __init__(self, model="lr", elements=(), val_fraction=0.2, random_state=None):
        super().__init__(model, val_fraction, random_state)
        self.elements = elements

    @classmethod
    def check_state(cls, header: dict) -> tuple[str, str] | None:
        """``(field, what was expected)`` for the first field of a stored state that is wrong, or None."""
        if not finite_list(header.get("thresholds"), header["outputs"][0]):
            return "thresholds", f"{header['outputs'][0]} finite thresholds, one per element"
        if header["params"]["model"] not in CLASSICAL:
            return "params", "a classical model's name"
        return None

    def fit(self, X, Y, groups=None):
        """Fit the element model; its own validation split (the same rows) sets the thresholds."""
        kind = FormulaVote if self.model == "formula_vote" else ClassicalElementIdentifier
        options = {} if kind is FormulaVote else {"base": self.model}
        model = kind(self.elements, val_fraction=self.val_fraction, random_state=self.random_state, **options)
        X = validate_data(self, X, dtype=np.float64)
        model.fit(X, Y, groups)
        self.model_, self.validation_index_ = model, model.validation_index_
        self.validation_scores_ = getattr(model, "validation_scores_", None)
        self._restore({}, "fit")
        return self

    def _params(self) -> dict:
        return {**super()._params(), "elements": list(self.elements)}

    def _restore(self, header: dict, source: str) -> None:
        self.elements_ = list(self.model_.elements_)
        self.thresholds_ = np.asarray(self.model_.thresholds_, dtype=np.float64)
        if header and header["thresholds"] != self.thresholds_.tolist():
            raise ModelError(f"{source}: the stored model's thresholds do not match the header's")

    def attribution(self, X, target: str | None = None) -> Attribution:
        raise ModelError(f"{self.model} for elements has no attribution: explain a network")


def _auto(model) -> AutoClassifier | None:
    """The :class:`AutoClassifier` a fitted model is, or holds inside ``+epo``, or None."""
    model = model.base_ if isinstance(model, Orthogonalised) else model
    return model if isinstance(model, AutoClassifier) else None


def _projection(directions: np.ndarray) -> torch.nn.Module:
    """A float32 linear torch module of :func:`~ramanid.training.epo.project_out` (a symmetric map)."""
    points = directions.shape[1]
    layer = torch.nn.Linear(points, points, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(project_out(np.eye(points), directions), dtype=torch.float32))
    return layer


def linear_logits(model) -> torch.nn.Module | None:
    """A float32 linear torch module giving the logits of a fitted pipeline of standardising, PCA
    and logistic regression steps (any of them but the last optional), or None if ``model`` is
    anything else. Two classes get logits ``±z/2``, whose softmax is logistic regression's.
    """
    steps = [step for _, step in model.steps] if isinstance(model, Pipeline) else [model]
    if not isinstance(steps[-1], LogisticRegression):
        return None
    coef, intercept = steps[-1].coef_.T, steps[-1].intercept_  # logits = z @ coef + intercept
    if coef.shape[1] == 1:
        coef, intercept = np.hstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    for step in reversed(steps[:-1]):  # fold each step's affine map z = f(x) into coef, intercept
        if isinstance(step, StandardScaler):
            scale = 1 / step.scale_ if step.scale_ is not None else np.ones(step.n_features_in_)
            mean = step.mean_ if step.mean_ is not None else np.zeros(step.n_features_in_)
            coef, intercept = scale[:, None] * coef, intercept - (mean * scale) @ coef
        elif isinstance(step, PCA) and not step.whiten:
            coef, intercept = step.components_.T @ coef, intercept - step.mean_ @ step.components_.T @ coef
        else:
            return None
    layer = torch.nn.Linear(coef.shape[0], coef.shape[1])
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(coef.T, dtype=torch.float32))
        layer.bias.copy_(torch.as_tensor(intercept, dtype=torch.float32))
    return layer.eval()
