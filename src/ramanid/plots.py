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
    ax.set_xticks(np.arange(len(models)) + 0.4 - width / 2, [_short(m) for m in models], rotation=20)
    ax.set_ylabel(label)
    ax.set_ylim(0, 1)
    ax.set_title(_short(f"{label} per fold — {result['split']}", 120), fontsize=9)
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
            ax.plot(fpr, tpr, label=f"{_short(model)} (AUC {auc:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_title(_short(element))
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(fontsize=7, loc="lower right")
    for k in range(len(elements), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(_short(f"ROC curves, test folds pooled — {result['split']}", 120), fontsize=9)
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
        names = [_short(c) for c in classes]
        ax.set_xticks(range(len(classes)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{_short(model)}: confusion, rows normalised, all test folds", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.7)
    return save(fig, path)


def explanation(
    shifts, spectrum, attribution, title: str, path: Path, reference=None, reference_label: str = "", notes=()
) -> Path:
    """The spectrum with its attribution per Raman shift, and the best-matching reference
    spectrum; ``notes`` (lines: a blend's vote) are written in the top left corner.
    """
    fig = Figure(figsize=(9, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.4])
    top.plot(shifts, spectrum, color="black", lw=1, label="spectrum (preprocessed)")
    if reference is not None:
        label = f"best match: {_short(reference_label, 60)}"
        top.plot(shifts, reference, color="tab:green", lw=1, ls="--", alpha=0.8, label=label)
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
    top.set_title("\n".join(_short(line, 100) for line in title.splitlines()[:3]), fontsize=10)
    top.legend(fontsize=8, loc="upper right")
    if notes:
        text = "formula vote:\n" + "\n".join(_short(line, 70) for line in notes)
        top.text(0.01, 0.98, text, transform=top.transAxes, va="top", fontsize=7, family="monospace")
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
            ax.scatter(points[mask, 0], points[mask, 1], s=10, color=colour, label=_short(cls))
        title = f"{name}\nsilhouette {scores[name]:.3f} before the projection (cosine; higher separates better)"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("component 1")
        ax.set_ylabel("component 2")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(fig, path)


#: the colours of a phase map's phases (matplotlib's tab20, then tab20b), unknown and unanswered pixels
PHASE_COLOURS = [mpl.colormaps["tab20"](i) for i in range(20)] + [mpl.colormaps["tab20b"](i) for i in range(20)]
UNKNOWN_COLOUR, UNANSWERED_COLOUR = (0.55, 0.55, 0.55, 1.0), (1.0, 1.0, 1.0, 1.0)
#: pixels too poor for a confident answer: pale, so that no colour claims a mineral there
TOO_POOR_COLOUR = (0.9, 0.9, 0.86, 1.0)
#: the phases that are not a mineral, each with its own colour
SPECIAL_COLOURS = {"unknown": UNKNOWN_COLOUR, "not answered": UNANSWERED_COLOUR, "too poor": TOO_POOR_COLOUR}


def phase_colours(phases) -> dict:
    """Each phase's colour (RGBA), in the order given, largest first: unknown grey, not answered
    white, too poor pale.
    """
    names = [p for p in phases if p not in SPECIAL_COLOURS]
    colour = {name: PHASE_COLOURS[i % len(PHASE_COLOURS)] for i, name in enumerate(names)}
    colour.update(SPECIAL_COLOURS)
    return colour


def phase_map(data, table, phases, path: Path) -> Path:
    """The categorical map of phases: a legend with each phase's area share, axes in the map's
    units (µm where the file says so), unknown pixels grey, pixels too poor for an answer pale,
    and every pixel whose own spectrum is too poor crossed (a neighbourhood step may have given it
    its neighbours' phase).
    """
    from matplotlib.patches import Patch

    colour = phase_colours(phases["phase"])
    names = [p for p in phases["phase"] if p not in SPECIAL_COLOURS]
    rgba = np.array([colour[p] for p in table["phase"]])
    fig = Figure(figsize=(8, 6), layout="constrained")
    ax = fig.subplots()
    _draw_map(ax, data, rgba)
    poor = table["poor"].to_numpy(bool)
    if poor.any():
        ax.scatter(data.x[poor], data.y[poor], marker="x", s=6, c="k", linewidths=0.5, label="too poor")
    shares = dict(zip(phases["phase"], phases["area_share"], strict=True))
    handles = [
        Patch(color=colour[p], label=f"{_short(p)} ({shares[p]:.1%})")
        for p in [*names[:24], "unknown", "too poor"]
        if p in shares
    ]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False)
    ax.set_title(f"phases of {_short(str(data.source), 60)}", fontsize=9)
    return save(fig, path)


def confidence_map(data, table, path: Path) -> Path:
    """The probability of each pixel's answer."""
    values = np.nan_to_num(table["probability"].to_numpy(float), nan=0.0)
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.subplots()
    image = _draw_map(ax, data, mpl.colormaps["viridis"](values), values)
    fig.colorbar(image, ax=ax, label="probability of the answer")
    ax.set_title("confidence", fontsize=9)
    return save(fig, path)


def _draw_map(ax, data, rgba: np.ndarray, values: np.ndarray | None = None):
    """Pixels as an image where they form a regular grid, else as points; returns the mappable."""
    grid = data.grid
    unit = "µm" if data.facts.get("format") not in ("map table", ".npy cube") else "pixels"
    ax.set_xlabel(f"x ({unit})")
    ax.set_ylabel(f"y ({unit})")
    ax.ticklabel_format(useOffset=False, style="plain")  # stage coordinates as the stage reads them
    if grid is None:  # a line scan or an irregular map: points
        if values is None:
            return ax.scatter(data.x, data.y, c=rgba, s=12)
        return ax.scatter(data.x, data.y, c=values, s=12, vmin=0, vmax=1, cmap="viridis")
    columns, rows, xs, ys = grid
    image = np.ones((len(ys), len(xs), 4))
    image[rows, columns] = rgba
    half_x = (xs[1] - xs[0]) / 2 if len(xs) > 1 else 0.5
    half_y = (ys[1] - ys[0]) / 2 if len(ys) > 1 else 0.5
    extent = (xs[0] - half_x, xs[-1] + half_x, ys[0] - half_y, ys[-1] + half_y)
    shown = ax.imshow(image, origin="lower", extent=extent, interpolation="nearest", aspect="equal")
    if values is not None:
        shown = ax.imshow(
            _grid_values(values, rows, columns, len(ys), len(xs)),
            origin="lower",
            extent=extent,
            interpolation="nearest",
            aspect="equal",
            cmap="viridis",
            vmin=0,
            vmax=1,
        )
    return shown


def _grid_values(values, rows, columns, ny, nx) -> np.ndarray:
    image = np.full((ny, nx), np.nan)
    image[rows, columns] = values
    return image


def spectrum_over_reference(shifts, spectrum, reference, title: str, out) -> None:
    """A preprocessed spectrum over a reference, as SVG into ``out`` (a path or a file object): it
    draws in about a third of a PNG's time, and scales.
    """
    fig = Figure(figsize=(7, 2.6))
    ax = fig.add_axes((0.02, 0.19, 0.96, 0.71))  # fixed margins: a layout engine would double the time
    ax.plot(shifts, spectrum, color="#111", lw=0.9, label="pixel (preprocessed)")
    ax.plot(shifts, reference, color="#2a9d3a", lw=0.9, alpha=0.8, label="reference")
    ax.set_xlabel("Raman shift (cm⁻¹)")
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="upper right")  # "best" searches every point: slow
    ax.set_title(_short(title, 90), fontsize=8)
    fig.savefig(out, format="svg")


def _short(text: str, limit: int = 40) -> str:
    """A label for a figure: cut to ``limit`` characters with an ellipsis, on one line, its dollar
    signs shown as written (never read as mathtext). A class name can be anything a user's table held.
    """
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")
