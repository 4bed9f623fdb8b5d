"""Figures: cross-validation ROC curves, confusion matrices and per-fold bars. Axes in cm⁻¹ where spectral."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from ramanid.atomic import atomic_write

# Figures are made with matplotlib's object API, never pyplot, so importing this module leaves
# the user's backend and open figures alone.


def save(fig: Figure, path: Path) -> Path:
    """Save a figure atomically as PNG."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
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
    fig = Figure(figsize=(max(5, 1.2 * len(models) * max(folds, 1) / 3), 3.5))
    ax = fig.subplots()
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
    fig = Figure(figsize=(4 * cols, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
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
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
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


def explanation(
    shifts, spectrum, attribution, title: str, path: Path, reference=None, reference_label: str = ""
) -> Path:
    """The spectrum with its attribution per Raman shift, and the best-matching reference spectrum."""
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.4])
    top.plot(shifts, spectrum, color="black", lw=1, label="spectrum (preprocessed)")
    if reference is not None:
        top.plot(shifts, reference, color="tab:green", lw=1, ls="--", alpha=0.8, label=f"best match: {reference_label}")
    scale = np.abs(attribution).max() or 1.0
    top.fill_between(
        shifts,
        0,
        np.clip(attribution, 0, None) / scale * np.max(spectrum),
        color="tab:red",
        alpha=0.35,
        label="attribution towards the class (scaled)",
    )
    top.fill_between(
        shifts,
        0,
        np.clip(attribution, None, 0) / scale * np.max(spectrum),
        color="tab:blue",
        alpha=0.35,
        label="attribution against the class (scaled)",
    )
    top.set_ylabel("intensity (a.u.)")
    top.set_title(title, fontsize=10)
    top.legend(fontsize=8, loc="upper right")
    bottom.bar(
        shifts, attribution, width=np.diff(shifts).mean(), color=np.where(attribution >= 0, "tab:red", "tab:blue")
    )
    bottom.axhline(0, color="grey", lw=0.6)
    bottom.set_ylabel("integrated\ngradients")
    bottom.set_xlabel("Raman shift (cm$^{-1}$)")
    return save(fig, path)


def embedding_maps(
    maps: dict[str, np.ndarray], labels: np.ndarray, scores: dict[str, float], path: Path, max_classes: int = 12
) -> Path:
    """Side-by-side 2-D maps (e.g. RamanNet embedding vs PCA), coloured by class."""
    common = [c for c, _ in zip(*np.unique(labels, return_counts=True), strict=False)]
    counts = {c: int(np.sum(labels == c)) for c in common}
    shown = sorted(counts, key=lambda c: -counts[c])[:max_classes]
    fig = Figure(figsize=(5.2 * len(maps), 4.6), layout="constrained")
    axes = fig.subplots(1, len(maps))
    axes = np.atleast_1d(axes)
    colours = mpl.colormaps["tab20"](np.linspace(0, 1, len(shown)))
    for ax, (name, points) in zip(axes, maps.items(), strict=False):
        other = ~np.isin(labels, shown)
        ax.scatter(points[other, 0], points[other, 1], s=6, color="lightgrey", label="other classes")
        for colour, cls in zip(colours, shown, strict=False):
            mask = labels == cls
            ax.scatter(points[mask, 0], points[mask, 1], s=10, color=colour, label=str(cls))
        ax.set_title(f"{name}\nsilhouette {scores[name]:.3f} (higher separates better)", fontsize=9)
        ax.set_xlabel("component 1")
        ax.set_ylabel("component 2")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(fig, path)
