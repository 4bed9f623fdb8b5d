"""scikit-learn-compatible neural estimators.

``__init__`` only stores its keyword arguments; ``fit`` checks them and returns ``self``; learned
state ends in ``_``. So the estimators drop into ``Pipeline``, ``cross_validate`` and
``GridSearchCV``. Each estimator saves and restores its own state (:meth:`get_state`,
:meth:`from_state`, after skorch's ``save_params``/``load_params``), checks a stored state
(:meth:`check_state`) and answers inference's questions (:mod:`ramanid.training.saved`); a model
folder's layout is :mod:`ramanid.bundle`'s business.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ramanid.chemistry import DEFAULT_ELEMENTS
from ramanid.errors import ModelError
from ramanid.holdout import DEFAULT_RULE, ThresholdedMixin, check_rule, choose_thresholds, validation_split
from ramanid.models import build_model, get_model_spec
from ramanid.search import References
from ramanid.targets import check_presence
from ramanid.training.augment import Augment
from ramanid.training.losses import semi_hard_triplet_loss
from ramanid.training.saved import ClassifierAnswers, ElementAnswers, finite_list
from ramanid.training.trainer import TrainConfig, check_precision, predict_logits, seed_everything, train


class _NeuralEstimator(BaseEstimator):
    """Shared parameters, training, and state of the neural estimators."""

    def __init__(
        self,
        model,
        model_params=None,
        epochs=100,
        lr=None,
        weight_decay=None,
        batch_size=None,
        patience=None,
        scheduler=None,
        clip_grad=None,
        val_fraction=0.1,
        augment=None,
        device=None,
        precision="auto",
        warm_start=False,
        random_state=None,
        progress=False,
    ):
        self.model = model
        self.model_params = model_params
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.patience = patience
        self.scheduler = scheduler
        self.clip_grad = clip_grad
        self.val_fraction = val_fraction
        self.augment = augment
        self.device = device
        self.precision = precision
        self.warm_start = warm_start
        self.random_state = random_state
        self.progress = progress

    @property
    def spec_(self):
        """The registry's facts about ``model``."""
        return get_model_spec(self.model)

    @property
    def transductive(self) -> bool:
        """Whether the network's output for one spectrum depends on the others in its batch."""
        return self.spec_.transductive

    def _check_params(self) -> None:
        """Fail before any training on a parameter that cannot work (as scikit-learn checks in ``fit``)."""
        spec = self.spec_
        check_precision(self.precision)
        if not 0 <= self.val_fraction < 1:
            raise ModelError(f"val_fraction {self.val_fraction}: expected a share in [0, 1)")
        if self.epochs < 0:
            raise ModelError(f"epochs {self.epochs}: expected 0 or more")
        if self.model_params is not None and not isinstance(self.model_params, dict):
            raise ModelError(f"model_params {self.model_params!r}: expected a dict of {spec.name}'s hyper-parameters")
        try:
            Augment(**(self._setting("augment", None) or {}))
        except TypeError as exc:
            raise ModelError(f"augment: {exc}") from exc

    def _setting(self, name: str, fallback):
        value = getattr(self, name)
        return value if value is not None else self.spec_.defaults.get(name, fallback)

    def _config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            lr=self._setting("lr", 1e-3),
            weight_decay=self._setting("weight_decay", 0.0),
            batch_size=self._setting("batch_size", 64),
            patience=self._setting("patience", 20),
            scheduler=self._setting("scheduler", "plateau"),
            clip_grad=self._setting("clip_grad", None),
            device=self.device,
            seed=self._seed(),
            progress=self.progress,
            precision=self.precision,
            augment=Augment(**(self._setting("augment", None) or {})),
        )

    def _seed(self) -> int:
        return self.random_state if self.random_state is not None else 0

    def _warm(self, fitted: str) -> bool:
        """True where ``fit`` continues from the weights of an earlier fit (``warm_start``)."""
        return bool(self.warm_start) and hasattr(self, fitted)

    def _split(self, X, Y, stratify=None, groups=None):
        """Hold out ``val_fraction`` of the training data; its positions go to ``validation_index_``.

        With ``groups``, whole groups are held out (so early stopping and thresholds are chosen
        on groups, e.g. minerals or patients, that training did not see); otherwise the split is
        stratified by ``stratify`` where every class allows it.
        """
        train, val = validation_split(len(X), self.val_fraction, self._seed(), stratify, groups)
        self.validation_index_ = val
        return X[train], Y[train], X[val], Y[val]

    def _new_model(self, n_outputs: int):
        seed_everything(self._seed())
        return build_model(self.model, self.n_features_in_, n_outputs, **(self.model_params or {}))

    def _predict_batch(self):
        # a transductive model scores everything it is given as one batch
        return None if self.spec_.transductive else 1024

    def _networks(self) -> list:
        raise NotImplementedError

    def get_state(self) -> tuple[dict, dict]:
        """``(header, tensors)``: JSON-ready parameters and fitted attributes, and every network's
        weights, named ``net{i}.{parameter}``; :meth:`from_state` restores the estimator.
        """
        networks = self._networks()
        tensors = {
            f"net{i}.{k}": v.detach().cpu().contiguous()
            for i, m in enumerate(networks)
            for k, v in m.state_dict().items()
        }
        header = {
            "estimator": type(self).__name__,
            "params": _json_params(self.get_params()),
            "n_features": int(self.n_features_in_),
            "n_networks": len(networks),
            "outputs": self._outputs(),
            "classes": [str(c) for c in getattr(self, "classes_", [])],
            "thresholds": [float(t) for t in getattr(self, "thresholds_", [])],
        }
        return header, tensors

    @classmethod
    def from_state(
        cls, header: dict, tensors: dict, references: References | None = None, source: str = "state"
    ) -> _NeuralEstimator:
        """The fitted estimator that :meth:`get_state` described, comparing queries with
        ``references``; a :class:`ModelError` naming the field for anything that does not fit
        (unknown parameters, wrong sizes, missing weights).
        """
        params = dict(header["params"])
        unknown = sorted(set(params) - set(cls._get_param_names()))
        if unknown:
            raise ModelError(f"{source}: unknown parameters {unknown} for {cls.__name__}")
        if params.get("elements") is not None:
            params["elements"] = tuple(params["elements"])
        estimator = cls(**params)
        estimator._check_params()
        networks = []
        for i, outputs in enumerate(header["outputs"]):
            state = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"net{i}.")}
            networks.append(estimator._restore_network(header["n_features"], outputs, state, f"{source}: network {i}"))
        estimator.n_features_in_ = int(header["n_features"])
        estimator._restore(header, networks)
        return estimator.attach(references) if references is not None else estimator

    def _restore_network(self, n_features: int, outputs: int, state: dict, source: str):
        """Build on the meta device first, so that sizes are checked against the weights before
        anything is allocated; then build for real and load.
        """
        params = self.model_params or {}
        with torch.device("meta"):
            shapes = {
                k: tuple(v.shape)
                for k, v in build_model(self.model, n_features, outputs, **params).state_dict().items()
            }
        stored = {k: tuple(v.shape) for k, v in state.items()}
        if shapes != stored:
            wrong = sorted(set(shapes) ^ set(stored)) or sorted(k for k in shapes if shapes[k] != stored[k])
            raise ModelError(
                f"{source}: the weights do not fit {self.model!r} with {n_features} points and "
                f"{outputs} outputs (first mismatch: {wrong[0]})"
            )
        network = build_model(self.model, n_features, outputs, **params)
        network.load_state_dict(state)
        return network.eval()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _shared(arguments: dict) -> dict:
    """The arguments of a subclass's ``__init__`` that :class:`_NeuralEstimator` stores, by keyword."""
    return {name: arguments[name] for name in _SHARED}


#: the parameters every neural estimator takes
_SHARED = tuple(inspect.signature(_NeuralEstimator.__init__).parameters)[1:]


def _check_samples(X) -> None:
    if len(X) < 2:
        raise ModelError(f"n_samples={len(X)}: a network needs at least 2 spectra to train (BatchNorm)")


def _json_params(params: dict) -> dict:
    return json.loads(json.dumps(params, default=lambda v: list(v) if isinstance(v, (tuple, set)) else str(v)))


class SpectrumClassifier(ClassifierAnswers, ClassifierMixin, TransformerMixin, _NeuralEstimator):
    """Multiclass classification of spectra (minerals, diseases, bacteria, ...).

    Parameters
    ----------
    model : str
        A name from :data:`ramanid.models.MODELS`, default ``"ramannet"``.
    model_params : dict, optional
        Hyper-parameters of the network.
    epochs, lr, weight_decay, batch_size, patience, scheduler, clip_grad
        Training (see :class:`~ramanid.training.trainer.TrainConfig`); ``None`` takes the
        model's published default (its registry entry).
    val_fraction : float
        Share of the training data held out for early stopping (stratified; whole groups when
        ``fit`` is given ``groups``).
    triplet_weight : float, optional
        Weight of the semi-hard triplet loss on the embedding (models with one); cross-entropy
        gets ``1 - triplet_weight``. RamanNet's default is 0.5.
    class_weight : {"balanced", None}
    augment : dict, optional
        Arguments of :class:`~ramanid.training.augment.Augment`; ``{}`` turns augmentation off
        where the model's default turns it on (attention_resnet).
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"mps"``; default: the best available.
    precision : {"auto", "float32", "bfloat16"}
        Training precision (see :class:`~ramanid.training.trainer.TrainConfig`).
    warm_start : bool
        If True and already fitted, ``fit`` continues training the current network on the new
        data (fine-tuning, as in the Bacteria-ID protocol of Ho et al. 2019) instead of starting
        afresh; the new labels must be among ``classes_``.
    random_state : int, optional
    progress : bool
    """

    def __init__(
        self,
        model="ramannet",
        model_params=None,
        epochs=100,
        lr=None,
        weight_decay=None,
        batch_size=None,
        patience=None,
        scheduler=None,
        clip_grad=None,
        val_fraction=0.1,
        triplet_weight=None,
        class_weight=None,
        augment=None,
        device=None,
        precision="auto",
        warm_start=False,
        random_state=None,
        progress=False,
    ):
        super().__init__(**_shared(locals()))
        self.triplet_weight = triplet_weight
        self.class_weight = class_weight

    def _check_params(self) -> None:
        super()._check_params()
        if not (self.class_weight in (None, "balanced") or isinstance(self.class_weight, dict)):
            raise ModelError(f"class_weight {self.class_weight!r}: expected 'balanced', a dict or None")

    def fit(self, X, y, groups=None):
        """Train on spectra ``X`` with labels ``y``; ``groups`` (optional) keeps groups together in
        the internal validation split.
        """
        self._check_params()
        warm = self._warm("model_")
        X, y = validate_data(self, X, y, dtype=np.float32, reset=not warm)
        check_classification_targets(y)
        _check_samples(X)
        if warm:
            unseen = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()))
            if unseen:
                raise ModelError(
                    f"warm_start: labels {unseen[:5]} were not among the {len(self.classes_)} classes "
                    "of the first fit; fine-tuning keeps the classes"
                )
            seed_everything(self._seed())
        else:
            self._encoder = LabelEncoder().fit(y)
            self.classes_ = self._encoder.classes_
            self.model_ = self._new_model(len(self.classes_))
        codes = self._encoder.transform(y)
        X_tr, y_tr, X_val, y_val = self._split(X, codes, stratify=codes, groups=groups)
        weights = None
        if self.class_weight == "balanced":
            counts = np.bincount(y_tr, minlength=len(self.classes_)).astype(np.float32)
            weights = torch.as_tensor(len(y_tr) / (len(counts) * np.maximum(counts, 1)))
        elif isinstance(self.class_weight, dict):
            weights = torch.as_tensor(
                [float(self.class_weight.get(c, 1.0)) for c in self.classes_], dtype=torch.float32
            )
        triplet = self._setting("triplet_weight", 0.0) if hasattr(self.model_, "embed") else 0.0

        def loss_fn(model, xb, yb):
            w = None if weights is None else weights.to(xb.device)
            if triplet:
                logits, embedding = model(xb, return_embedding=True)
                return (1 - triplet) * F.cross_entropy(logits, yb, weight=w) + triplet * semi_hard_triplet_loss(
                    embedding, yb
                )
            return F.cross_entropy(model(xb), yb, weight=w)

        self.history_ = train(
            self.model_,
            loss_fn,
            X_tr,
            y_tr,
            self._config(),
            X_val,
            y_val,
            metric_fn=lambda logits, yb: (logits.argmax(1) == yb).float().mean(),
        )
        return self

    def _networks(self) -> list:
        return [self.model_]

    @classmethod
    def check_state(cls, header: dict) -> tuple[str, str] | None:
        """``(field, what was expected)`` for the first field of a stored state that is wrong, or None."""
        classes, outputs = header.get("classes"), header["outputs"]
        if not (isinstance(classes, list) and len(classes) == outputs[0] and all(isinstance(c, str) for c in classes)):
            return "classes", f"{outputs[0]} class names"
        if len(set(classes)) != len(classes):
            return "classes", "class names that differ from each other"
        return None

    def _outputs(self) -> list[int]:
        return [len(self.classes_)]

    def _restore(self, header: dict, networks: list) -> None:
        self.model_ = networks[0]
        self._encoder = LabelEncoder()
        self._encoder.classes_ = self.classes_ = np.asarray(header["classes"])

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return predict_logits(self.model_, X, self._predict_batch())

    def logits(self, X) -> np.ndarray:
        """The network's outputs before the softmax, ``(n, classes)``."""
        return self._logits(X)

    def decision_function(self, X):
        """Logits, ``(n, classes)``; for two classes, scikit-learn's ``(n,)`` score of the second."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X):
        """Softmax probabilities, ``(n, classes)`` in the order of ``classes_``."""
        return torch.softmax(torch.as_tensor(self._logits(X)), dim=1).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def predict(self, X):
        """The most probable class of each spectrum."""
        best = np.argmax(self._logits(X), axis=1)
        return self.classes_[best]

    def transform(self, X):
        """The embeddings: L2-normalised for RamanNet, pooled features for attention models, and the
        logits for models without an embedding.
        """
        check_is_fitted(self, "model_")
        if not hasattr(self.model_, "embed"):
            return self._logits(X)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        with torch.no_grad():
            self.model_.eval()
            device = next(self.model_.parameters()).device
            return torch.cat(
                [
                    self.model_.embed(torch.as_tensor(X[i : i + 1024], device=device)).cpu()
                    for i in range(0, len(X), 1024)
                ]
            ).numpy()

    def fit_transform(self, X, y=None, **fit_params):
        """Fit, then embed ``X``."""
        return self.fit(X, y, **fit_params).transform(X)

    @property
    def has_embedding(self) -> bool:
        """Whether the network has an embedding (RamanNet, attention models)."""
        return hasattr(self.model_, "embed")

    def embed(self, X) -> np.ndarray:
        """The network's embeddings of ``X`` (:meth:`transform`); a :class:`ModelError` without one."""
        if not self.has_embedding:
            raise ModelError(f"model {self.model!r} has no embedding: use ramannet or attention_resnet")
        return self.transform(X)


class ElementIdentifier(ElementAnswers, ThresholdedMixin, _NeuralEstimator):
    """Multi-label: for each of ``elements``, whether the mineral contains it.

    One sigmoid output per element, trained jointly with binary cross-entropy (optionally with
    per-element positive weights), except models registered ``per_element`` (``seed_attention``),
    which are trained as the reference did: one network per element, MSE on 0/1 labels, full
    batch. Per-element decision thresholds are chosen on the validation split
    (``threshold="share"`` reports as many validation spectra present as are; ``"youden"``
    maximises sensitivity + specificity - 1; ``"f1"`` maximises F1; see
    :func:`~ramanid.holdout.choose_thresholds`), never on the data being scored.

    Parameters
    ----------
    elements : sequence of str
        Default Mg, Al, P, S, Fe, Cu.
    model : str
        Default ``"attention_resnet"``.
    threshold : {"share", "youden", "f1"} or float
    pos_weight : bool
        Weight each element's positives by its negative/positive ratio in the training data.
    Other parameters as :class:`SpectrumClassifier`.
    """

    def __init__(
        self,
        elements=DEFAULT_ELEMENTS,
        model="attention_resnet",
        model_params=None,
        epochs=100,
        lr=None,
        weight_decay=None,
        batch_size=None,
        patience=None,
        scheduler=None,
        clip_grad=None,
        val_fraction=0.15,
        threshold=DEFAULT_RULE,
        pos_weight=True,
        augment=None,
        device=None,
        precision="auto",
        warm_start=False,
        random_state=None,
        progress=False,
    ):
        super().__init__(**_shared(locals()))
        self.elements = elements
        self.threshold = threshold
        self.pos_weight = pos_weight

    def _check_params(self) -> None:
        super()._check_params()
        check_rule(self.threshold)
        if isinstance(self.elements, str) or not len(self.elements):
            raise ModelError(f"elements {self.elements!r}: expected a non-empty list of element symbols")

    def fit(self, X, Y, groups=None):
        """Train on spectra ``X`` with 0/1 targets ``Y`` (one column per element); ``groups``
        (optional) keeps groups, e.g. minerals, together in the internal validation split.
        """
        self._check_params()
        warm = self._warm("models_")
        X, Y = validate_data(self, X, Y, dtype=np.float32, multi_output=True, reset=not warm)
        _check_samples(X)
        Y = check_presence(Y, self.elements).astype(np.float32)
        if warm and list(self.elements) != self.elements_:
            raise ModelError(
                f"warm_start: elements {list(self.elements)} differ from those of the first fit {self.elements_}"
            )
        self.elements_ = list(self.elements)
        X_tr, Y_tr, X_val, Y_val = self._split(X, Y, groups=groups)
        config = self._config()
        targets = [[j] for j in range(Y.shape[1])] if self.spec_.per_element else [list(range(Y.shape[1]))]
        if warm:
            seed_everything(self._seed())
        models, self.history_ = [], []
        for j, columns in enumerate(targets):
            model = self.models_[j] if warm else self._new_model(len(columns))
            self.history_.append(
                train(model, self._loss(Y_tr[:, columns]), X_tr, Y_tr[:, columns], config, X_val, Y_val[:, columns])
            )
            models.append(model)
        self.models_ = models
        scores = self._scores(X_val) if len(X_val) else np.zeros_like(Y_val, dtype=float)
        self.thresholds_ = choose_thresholds(Y_val, scores, self.threshold, share=Y.mean(axis=0))
        return self

    def _loss(self, Y_tr: np.ndarray):
        if self.spec_.element_loss == "mse":
            return lambda model, xb, yb: F.mse_loss(model(xb), yb)
        weight = None
        if self.pos_weight:
            positives = Y_tr.sum(0)
            weight = torch.as_tensor((len(Y_tr) - positives) / np.maximum(positives, 1), dtype=torch.float32)

        def loss_fn(model, xb, yb):
            w = None if weight is None else weight.to(xb.device)
            return F.binary_cross_entropy_with_logits(model(xb), yb, pos_weight=w)

        return loss_fn

    def _scores(self, X) -> np.ndarray:
        outputs = np.hstack([predict_logits(m, X, self._predict_batch()) for m in self.models_])
        if self.spec_.element_loss == "mse":
            return outputs  # regression outputs on 0/1 labels: scores, not probabilities, as in the reference
        return 1 / (1 + np.exp(-outputs))

    def _networks(self) -> list:
        return self.models_

    @classmethod
    def check_state(cls, header: dict) -> tuple[str, str] | None:
        """``(field, what was expected)`` for the first field of a stored state that is wrong, or None."""
        if not finite_list(header.get("thresholds"), sum(header["outputs"])):
            return "thresholds", f"{sum(header['outputs'])} finite thresholds, one per element"
        return None

    def _outputs(self) -> list[int]:
        return [len(self.elements_) // len(self.models_)] * len(self.models_)

    def _restore(self, header: dict, networks: list) -> None:
        self.models_, self.elements_ = networks, list(self.elements)
        self.thresholds_ = np.asarray(header["thresholds"], dtype=np.float64)
        if len(self.thresholds_) != len(self.elements_):
            raise ModelError(f"{len(self.thresholds_)} thresholds for {len(self.elements_)} elements")

    def predict_proba(self, X):
        """Probabilities, shape ``(n, elements)``; for MSE-trained models, their raw regression scores."""
        check_is_fitted(self, "models_")
        return self._scores(validate_data(self, X, dtype=np.float32, reset=False))
