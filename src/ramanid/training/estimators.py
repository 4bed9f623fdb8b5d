"""scikit-learn-compatible neural estimators.

``__init__`` only stores its keyword arguments; ``fit`` returns ``self``; learned state ends in
``_``. So the estimators drop into ``Pipeline``, ``cross_validate`` and ``GridSearchCV``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.metrics import precision_recall_curve, roc_curve
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted, validate_data

from ramanid.chemistry import DEFAULT_ELEMENTS
from ramanid.errors import ModelError
from ramanid.models import build_model
from ramanid.training.augment import Augment
from ramanid.training.losses import semi_hard_triplet_loss
from ramanid.training.trainer import TrainConfig, predict_logits, seed_everything, train

#: training defaults of the published models, used where the user leaves a parameter as None
MODEL_DEFAULTS = {
    "ramannet": {"lr": 1e-3, "batch_size": 256, "triplet_weight": 0.5},
    "seed_attention": {"lr": 0.01, "weight_decay": 1e-5, "batch_size": None, "patience": None, "scheduler": None,
                       "separate": True},
    # chosen on one shuffled fold of the 780 nm element set (benchmarks/RESULTS.md, issue 5)
    "attention_resnet": {"patience": 40, "augment": {"shift": 2, "scale": 0.1, "noise": 0.01}},
}


class _NeuralEstimator(BaseEstimator):
    """Shared parameters and training of the neural estimators."""

    def _setting(self, name: str, fallback):
        value = getattr(self, name)
        return value if value is not None else MODEL_DEFAULTS.get(self.model, {}).get(name, fallback)

    def _config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs, lr=self._setting("lr", 1e-3), weight_decay=self._setting("weight_decay", 0.0),
            batch_size=self._setting("batch_size", 64), patience=self._setting("patience", 20),
            scheduler=self._setting("scheduler", "plateau"), clip_grad=self.clip_grad, device=self.device,
            seed=self._seed(), progress=self.progress, precision=self.precision,
            augment=Augment(**(self._setting("augment", None) or {})),
        )

    def _seed(self) -> int:
        return self.random_state if self.random_state is not None else 0

    def _warm(self, fitted: str) -> bool:
        """True where ``fit`` continues from the weights of an earlier fit (``warm_start``)."""
        return bool(self.warm_start) and hasattr(self, fitted)

    def _split(self, X, Y, stratify=None):
        """Hold out ``val_fraction`` of the training data; its positions go to ``validation_index_``."""
        index = np.arange(len(X))
        if self.val_fraction and len(X) >= 10:
            seed = self._seed()
            try:
                train, val = train_test_split(index, test_size=self.val_fraction, random_state=seed, stratify=stratify)
            except ValueError:  # a class too small to stratify
                train, val = train_test_split(index, test_size=self.val_fraction, random_state=seed)
        else:
            train, val = index, index[:0]
        self.validation_index_ = np.sort(val)
        return X[train], Y[train], X[val], Y[val]

    def _new_model(self, n_outputs: int):
        seed_everything(self._seed())
        return build_model(self.model, self.n_features_in_, n_outputs, **(self.model_params or {}))

    def _predict_batch(self):
        # a transductive model scores everything it is given as one batch
        return None if self.model == "seed_attention" else 1024

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class SpectrumClassifier(ClassifierMixin, TransformerMixin, _NeuralEstimator):
    """Multiclass classification of spectra (minerals, diseases, bacteria, ...).

    Parameters
    ----------
    model : str
        A name from :data:`ramanid.models.MODELS`, default ``"ramannet"``.
    model_params : dict, optional
        Hyper-parameters of the network.
    epochs, lr, weight_decay, batch_size, patience, scheduler, clip_grad
        Training (see :class:`~ramanid.training.trainer.TrainConfig`); ``None`` takes the
        model's published default.
    val_fraction : float
        Share of the training data held out (stratified) for early stopping.
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

    def __init__(self, model="ramannet", model_params=None, epochs=100, lr=None, weight_decay=None, batch_size=None,
                 patience=None, scheduler=None, clip_grad=None, val_fraction=0.1, triplet_weight=None,
                 class_weight=None, augment=None, device=None, precision="auto", warm_start=False, random_state=None,
                 progress=False):
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
        self.triplet_weight = triplet_weight
        self.class_weight = class_weight
        self.augment = augment
        self.device = device
        self.precision = precision
        self.warm_start = warm_start
        self.random_state = random_state
        self.progress = progress

    def fit(self, X, y):
        warm = self._warm("model_")
        X, y = validate_data(self, X, y, dtype=np.float32, reset=not warm)
        if warm:
            unseen = sorted(set(np.unique(y).tolist()) - set(self.classes_.tolist()))
            if unseen:
                raise ModelError(f"warm_start: labels {unseen[:5]} were not among the {len(self.classes_)} classes "
                                 "of the first fit; fine-tuning keeps the classes")
            seed_everything(self._seed())
        else:
            self._encoder = LabelEncoder().fit(y)
            self.classes_ = self._encoder.classes_
            self.model_ = self._new_model(len(self.classes_))
        codes = self._encoder.transform(y)
        X_tr, y_tr, X_val, y_val = self._split(X, codes, stratify=codes)
        weights = None
        if self.class_weight == "balanced":
            counts = np.bincount(y_tr, minlength=len(self.classes_)).astype(np.float32)
            weights = torch.as_tensor(len(y_tr) / (len(counts) * np.maximum(counts, 1)))
        triplet = self._setting("triplet_weight", 0.0) if hasattr(self.model_, "embed") else 0.0

        def loss_fn(model, xb, yb):
            w = None if weights is None else weights.to(xb.device)
            if triplet:
                logits, embedding = model(xb, return_embedding=True)
                return (1 - triplet) * F.cross_entropy(logits, yb, weight=w) + triplet * semi_hard_triplet_loss(
                    embedding, yb)
            return F.cross_entropy(model(xb), yb, weight=w)

        self.history_ = train(self.model_, loss_fn, X_tr, y_tr, self._config(), X_val, y_val,
                              metric_fn=lambda logits, yb: (logits.argmax(1) == yb).float().mean())
        return self

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        return predict_logits(self.model_, X, self._predict_batch())

    def decision_function(self, X):
        """Logits, ``(n, classes)``; for two classes, scikit-learn's ``(n,)`` score of the second."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X):
        return torch.softmax(torch.as_tensor(self._logits(X)), dim=1).numpy()

    def predict(self, X):
        best = np.argmax(self._logits(X), axis=1)
        return self.classes_[best]

    def transform(self, X):
        """The embeddings: L2-normalised for RamanNet, pooled features for attention models, and the
        logits for models without an embedding."""
        check_is_fitted(self, "model_")
        if not hasattr(self.model_, "embed"):
            return self._logits(X)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        with torch.no_grad():
            self.model_.eval()
            device = next(self.model_.parameters()).device
            return torch.cat([self.model_.embed(torch.as_tensor(X[i : i + 1024], device=device)).cpu()
                              for i in range(0, len(X), 1024)]).numpy()

    def fit_transform(self, X, y=None, **fit_params):
        return self.fit(X, y).transform(X)


class ElementIdentifier(_NeuralEstimator):
    """Multi-label: does the mineral contain each of ``elements``?

    One sigmoid output per element, trained jointly with binary cross-entropy (optionally with
    per-element positive weights), except ``seed_attention``, which is trained as the reference
    did: one network per element, MSE on 0/1 labels, full batch. Per-element decision
    thresholds are chosen on the validation split (``threshold="youden"`` maximises
    sensitivity + specificity - 1; ``"f1"`` maximises F1), never on the data being scored.

    Parameters
    ----------
    elements : sequence of str
        Default Mg, Al, P, S, Fe, Cu.
    model : str
        Default ``"attention_resnet"``.
    threshold : {"youden", "f1"} or float
    pos_weight : bool
        Weight each element's positives by its negative/positive ratio in the training data.
    Other parameters as :class:`SpectrumClassifier`.
    """

    def __init__(self, elements=DEFAULT_ELEMENTS, model="attention_resnet", model_params=None, epochs=100, lr=None,
                 weight_decay=None, batch_size=None, patience=None, scheduler=None, clip_grad=None, val_fraction=0.15,
                 threshold="youden", pos_weight=True, augment=None, device=None, precision="auto", warm_start=False,
                 random_state=None, progress=False):
        self.elements = elements
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
        self.threshold = threshold
        self.pos_weight = pos_weight
        self.augment = augment
        self.device = device
        self.precision = precision
        self.warm_start = warm_start
        self.random_state = random_state
        self.progress = progress

    def fit(self, X, Y):
        warm = self._warm("models_")
        X, Y = validate_data(self, X, Y, dtype=np.float32, multi_output=True, reset=not warm)
        Y = np.asarray(Y, dtype=np.float32).reshape(len(X), -1)
        if Y.shape[1] != len(self.elements):
            raise ModelError(f"Y has {Y.shape[1]} columns for {len(self.elements)} elements {list(self.elements)}")
        if warm and list(self.elements) != self.elements_:
            raise ModelError(f"warm_start: elements {list(self.elements)} differ from those of the first fit "
                             f"{self.elements_}")
        self.elements_ = list(self.elements)
        X_tr, Y_tr, X_val, Y_val = self._split(X, Y)
        config = self._config()
        separate = MODEL_DEFAULTS.get(self.model, {}).get("separate", False)
        targets = [[j] for j in range(Y.shape[1])] if separate else [list(range(Y.shape[1]))]
        if warm:
            seed_everything(self._seed())
        models, self.history_ = [], []
        for j, columns in enumerate(targets):
            model = self.models_[j] if warm else self._new_model(len(columns))
            self.history_.append(train(model, self._loss(Y_tr[:, columns]), X_tr, Y_tr[:, columns], config, X_val,
                                       Y_val[:, columns]))
            models.append(model)
        self.models_ = models
        self.thresholds_ = self._choose_thresholds(X_val, Y_val)
        return self

    def _loss(self, Y_tr: np.ndarray):
        if self.model == "seed_attention":
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
        if self.model == "seed_attention":
            return outputs  # regression outputs on 0/1 labels: scores, not probabilities, as in the reference
        return 1 / (1 + np.exp(-outputs))

    def _choose_thresholds(self, X_val, Y_val) -> np.ndarray:
        scores = self._scores(X_val) if len(X_val) else np.zeros_like(Y_val, dtype=float)
        return choose_thresholds(Y_val, scores, self.threshold)

    def predict_proba(self, X):
        """Probabilities, shape ``(n, elements)``; for ``seed_attention``, its raw regression scores."""
        check_is_fitted(self, "models_")
        return self._scores(validate_data(self, X, dtype=np.float32, reset=False))

    def predict(self, X):
        return (self.predict_proba(X) >= self.thresholds_).astype(int)


def choose_thresholds(Y_val: np.ndarray, scores: np.ndarray, rule="youden") -> np.ndarray:
    """Per-column decision thresholds chosen on validation data.

    ``rule="youden"`` maximises sensitivity + specificity - 1 (Youden 1950); ``"f1"`` maximises
    F1; a number is used as it is. A column whose validation data hold one class only, or an
    empty validation set, gets 0.5.
    """
    columns = Y_val.shape[1]
    if not isinstance(rule, str):
        return np.full(columns, float(rule))
    if rule not in ("youden", "f1"):
        raise ModelError(f"unknown threshold rule {rule!r}: expected 'youden', 'f1' or a number")
    thresholds = np.full(columns, 0.5)
    for j in range(columns if len(Y_val) else 0):
        truth = Y_val[:, j]
        if truth.min() == truth.max():
            continue
        if rule == "youden":
            fpr, tpr, cut = roc_curve(truth, scores[:, j])
            thresholds[j] = min(cut[np.argmax(tpr - fpr)], 1.0)
        else:
            precision, recall, cut = precision_recall_curve(truth, scores[:, j])
            f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
            thresholds[j] = cut[np.argmax(f1)]
    return thresholds
