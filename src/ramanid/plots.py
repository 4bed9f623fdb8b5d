"""Figures: cross-validation ROC curves, confusion matrices and per-fold bars. Axes in cm⁻¹ where spectral."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from ramanid.io.atomic import atomic_write  # noqa: E402


def save(fig, path: Path) -> Path:
    """Save a figure atomically as PNG and close it."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def cv_figures(result: dict, out: Path) -> list[Path]:
    """The figures of a cross-validation result."""
    paths = [fold_bars(result, out / "folds.png")]
    if result["config"]["task"]["kind"] == "elements":
        paths.append(roc_curves(result, out / "roc_curves.png"))
    else:
        for model in result["models"]:
            paths.append(confusion_heatmap(result, model, out / f"confusion_{model}.png"))
    return paths


def fold_bars(result: dict, path: Path) -> Path:
    elements = result["config"]["task"]["kind"] == "elements"
    key, label = ("macro_roc_auc", "macro ROC AUC") if elements else ("accuracy", "accuracy")
    models = list(result["models"])
    folds = len(next(iter(result["models"].values()))["folds"])
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(models) * max(folds, 1) / 3), 3.5))
    width = 0.8 / max(folds, 1)
    for f in range(folds):
        values = [result["models"][m]["folds"][f]["metrics"].get(key) or 0 for m in models]
        ax.bar(np.arange(len(models)) + f * width, values, width, label=f"fold {f + 1}" if folds <= 10 else None)
    ax.set_xticks(np.arange(len(models)) + 0.4 - width / 2, models, rotation=20)
    ax.set_ylabel(label)
    ax.set_ylim(0, 1)
    ax.set_title(f"{label} per fold — {result['split']}", fontsize=9)
    if folds <= 10:
        ax.legend(fontsize=7, ncol=min(folds, 5))
    return save(fig, path)


def roc_curves(result: dict, path: Path) -> Path:
    elements = result["classes"]
    cols = min(3, len(elements))
    rows = int(np.ceil(len(elements) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False, layout="constrained")
    for j, element in enumerate(elements):
        ax = axes[j // cols][j % cols]
        for model, data in result["models"].items():
            truth = np.concatenate([np.asarray(r["truth"])[:, j] for r in data["folds"]])
            score = np.concatenate([np.asarray(r["scores"])[:, j] for r in data["folds"]])
            if truth.min() == truth.max():
                continue
            fpr, tpr, _ = roc_curve(truth, score)
            auc = data["summary"][f"{element}_roc_auc"]["mean"]
            ax.plot(fpr, tpr, label=f"{model} (AUC {auc:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_title(element)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=7, loc="lower right")
    for k in range(len(elements), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"ROC curves, test folds pooled — {result['split']}", fontsize=9)
    return save(fig, path)


def confusion_heatmap(result: dict, model: str, path: Path) -> Path:
    matrix = np.sum([np.asarray(r["metrics"]["confusion"]) for r in result["models"][model]["folds"]], axis=0)
    classes = result["classes"]
    size = min(14, 3 + 0.18 * len(classes))
    fig, ax = plt.subplots(figsize=(size, size))
    shown = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1)
    if len(classes) <= 40:
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{model}: confusion, rows normalised, all test folds", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.7)
    return save(fig, path)
