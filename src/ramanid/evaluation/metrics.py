"""Metrics for multiclass, multi-label (elements) and binary (clinical) tasks, and their aggregation."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    roc_auc_score,
    top_k_accuracy_score,
)


def multiclass_metrics(y_true, proba: np.ndarray, classes, positive=None) -> dict:
    """Accuracy, balanced accuracy, top-1/5/10, macro-F1, log-loss and the confusion matrix.

    ``proba`` has one column per entry of ``classes`` (all classes of the task, in order). Top-k
    is left out where the scores are not graded (one class per row holds every bit of the score,
    as a 1-nearest-neighbour's do): its ranks beyond the first would come from tie-breaking. For
    two classes, ``positive`` names the positive one (default: the second in sorted order).
    """
    classes = np.asarray(classes)
    y_pred = classes[np.argmax(proba, axis=1)]
    out = {
        "accuracy": accuracy_score(y_true, y_pred),
        "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true), zero_division=0),
        "log_loss": log_loss(y_true, _renormalised(proba), labels=classes),
    }
    graded = bool(np.any((proba > 0).sum(axis=1) > 1))
    for k in (1, 5, 10):
        if graded and 2 < len(classes) and k < len(classes):  # for two classes top-1 is the accuracy
            out[f"top{k}"] = top_k_accuracy_score(y_true, proba, k=k, labels=classes)
    if len(classes) == 2:
        positive = classes[1] if positive is None else positive
        if positive not in classes:
            raise ValueError(f"positive class {positive!r} is not one of {list(classes)}")
        column = int(np.flatnonzero(classes == positive)[0])
        out["positive"] = str(positive)
        out["roc_auc"] = roc_auc_score(np.asarray(y_true) == positive, proba[:, column])
        truth, decision = np.asarray(y_true) == positive, y_pred == positive
        out["sensitivity"] = float((truth & decision).sum() / max(truth.sum(), 1))
        out["specificity"] = float((~truth & ~decision).sum() / max((~truth).sum(), 1))
    out["confusion"] = confusion_matrix(y_true, y_pred, labels=classes).tolist()
    return out


def element_metrics(Y: np.ndarray, scores: np.ndarray, thresholds: np.ndarray, elements) -> dict:
    """Per element: ROC AUC, PR AUC, and accuracy, sensitivity and specificity at the given thresholds
    (chosen on validation data by the estimator), with the confusion matrix; and their macro means.
    """
    per = {}
    for j, element in enumerate(elements):
        truth, score = Y[:, j].astype(bool), scores[:, j]
        decision = score >= thresholds[j]
        tn, fp, fn, tp = confusion_matrix(truth, decision, labels=[False, True]).ravel()
        both = truth.min() != truth.max()
        per[element] = {
            "roc_auc": roc_auc_score(truth, score) if both else np.nan,
            "pr_auc": average_precision_score(truth, score) if both else np.nan,
            "accuracy": (tp + tn) / len(truth),
            "sensitivity": tp / (tp + fn) if tp + fn else np.nan,
            "specificity": tn / (tn + fp) if tn + fp else np.nan,
            "threshold": float(thresholds[j]),
            "positives": int(truth.sum()),
            "confusion": [[int(tn), int(fp)], [int(fn), int(tp)]],
        }
    macro = {
        f"macro_{k}": float(np.nanmean([m[k] for m in per.values()]))
        for k in ("roc_auc", "pr_auc", "accuracy", "sensitivity", "specificity")
    }
    return {"elements": per, **macro}


def aggregate(values: list[float]) -> dict:
    """Mean and sample standard deviation (ddof=1) over folds or repeats (NaN folds left out, and
    counted); one fold has no spread (NaN).
    """
    values = np.asarray(values, dtype=float)
    ok = values[~np.isnan(values)]
    return {
        "mean": float(ok.mean()) if len(ok) else np.nan,
        "std": float(ok.std(ddof=1)) if len(ok) > 1 else np.nan,
        "n": int(len(ok)),
    }


def _renormalised(proba: np.ndarray) -> np.ndarray:
    """Probabilities kept off 0 (log-loss is infinite there) and summing to one again."""
    clipped = np.clip(proba, 1e-7, 1)
    return clipped / clipped.sum(axis=1, keepdims=True)
