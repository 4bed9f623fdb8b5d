"""Write a cross-validation result: results.json, results.csv, report.md and figures, atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ramanid.atomic import atomic_write


def write_report(result: dict, out: str | Path) -> list[Path]:
    """Write every output of :func:`~ramanid.evaluation.protocol.run_cv` into the folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [_write_text(out / "results.json", json.dumps(result, indent=1, default=str))]
    table = results_table(result)
    with atomic_write(out / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    written.append(out / "results.csv")
    written.append(_write_text(out / "report.md", markdown(result)))
    from ramanid import plots

    written += plots.cv_figures(result, out)
    return written


def results_table(result: dict) -> pd.DataFrame:
    """One row per model, fold (or ``mean``/``std``) and metric."""
    rows = []
    for model, data in result["models"].items():
        for record in data["folds"]:
            for key, value in _flat_metrics(record["metrics"]).items():
                rows.append({"model": model, "fold": record["fold"], "metric": key, "value": value})
        for key, stats in data["summary"].items():
            rows.append({"model": model, "fold": "mean", "metric": key, "value": stats["mean"]})
            rows.append({"model": model, "fold": "std", "metric": key, "value": stats["std"]})
    return pd.DataFrame(rows)


#: the formula column element labels come from, as a reader would name it
LABEL_SOURCES = {
    "chemistry": "RRUFF's ideal chemistry formula",
    "measured_chemistry": "RRUFF's measured chemistry line",
}


def markdown(result: dict) -> str:
    """The report: what was run, on which split, and the tables."""
    config = result["config"]
    lines = [
        "# Cross-validation report",
        "",
        f"- task: {config['task']['kind']}" + (f" ({config['task']['column']})" if config["task"]["column"] else ""),
        f"- split: {result['split']}",
        f"- spectra: {result['n_spectra']}; data fingerprint {config['data']}",
        f"- options: {json.dumps(config['options'])}",
        *([f"- positive class: {result['positive']}"] if result.get("positive") else []),
        *(
            [f"- element labels from: {LABEL_SOURCES.get(config['task']['chemistry'], config['task']['chemistry'])}"]
            if config["task"]["kind"] == "elements"
            else []
        ),
        "- ± is the sample standard deviation over folds (ddof=1)",
        "",
    ]
    if config["task"]["kind"] == "elements":
        elements = result["classes"]
        lines += [
            "## ROC AUC per element (mean ± std over folds)",
            "",
            "| model | " + " | ".join(elements) + " | macro |",
            "|---" * (len(elements) + 2) + "|",
        ]
        for model, data in result["models"].items():
            s = data["summary"]
            cells = [_pm(s[f"{e}_roc_auc"]) for e in elements] + [_pm(s["macro_roc_auc"])]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "## At the validation-chosen thresholds (macro means)",
            "",
            "| model | accuracy | sensitivity | specificity | PR AUC |",
            "|---|---|---|---|---|",
        ]
        for model, data in result["models"].items():
            s = data["summary"]
            lines.append(
                f"| {model} | "
                + " | ".join(_pm(s[f"macro_{k}"]) for k in ("accuracy", "sensitivity", "specificity", "pr_auc"))
                + " |"
            )
    else:
        keys = [
            k
            for k in (
                "accuracy",
                "balanced_accuracy",
                "top1",
                "top5",
                "top10",
                "macro_f1",
                "log_loss",
                "sensitivity",
                "specificity",
                "roc_auc",
            )
            if any(k in d["summary"] for d in result["models"].values())
        ]
        lines += [
            "## Metrics (mean ± std over folds)",
            "",
            "| model | " + " | ".join(keys) + " |",
            "|---" * (len(keys) + 1) + "|",
        ]
        for model, data in result["models"].items():
            lines.append(f"| {model} | " + " | ".join(_pm(data["summary"].get(k)) for k in keys) + " |")
    lines += _choices(result)
    lines += [
        "",
        "Figures in this folder: folds.png (per-fold bars), and roc_curves.png (elements) or "
        "confusion_MODEL.png (classes). Per-fold numbers are in results.json and results.csv.",
    ]
    return "\n".join(lines) + "\n"


#: what a fold record holds about the choices made by inner cross-validation on its training part
CHOICES = {
    "preprocess": "preprocessing",
    "model_chosen": "model",
    "model_scores": "inner balanced accuracy",
    "model_untried": "left untried by the budget",
    "tuned": "options",
}


def _choices(result: dict) -> list[str]:
    """One line per model and fold for what inner cross-validation chose on the training part."""
    rows = [
        f"| {model} | {record['fold'] + 1} | "
        + "; ".join(f"{label}: {json.dumps(record[key])}" for key, label in CHOICES.items() if key in record)
        + " |"
        for model, data in result["models"].items()
        for record in data["folds"]
        if "variant" not in record and any(key in record for key in CHOICES)
    ]
    if not rows:
        return []
    return [
        "",
        "## Choices made on each training part (inner cross-validation)",
        "",
        "| model | fold | chosen |",
        "|---|---|---|",
        *rows,
    ]


def _pm(stats) -> str:
    if not stats or stats.get("mean") is None or np.isnan(stats["mean"]):
        return "n/a"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _flat_metrics(metrics: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(_flat_metrics(value, f"{prefix}{key}_"))
        elif isinstance(value, (int, float)) or value is None:
            flat[f"{prefix}{key}"] = value
    return flat


def _write_text(path: Path, text: str) -> Path:
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return path
