"""``ramanid demo``: the whole flow offline, on synthetic spectra from the shipped band table.

Build a synthetic raw set, preprocess it (despike, baseline, min-max), cross-validate RamanNet
against logistic regression, train and save RamanNet, predict example files (including one that
is not a mineral spectrum), explain one prediction and map the embeddings.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ramanid.atomic import atomic_write, mark_folder
from ramanid.datasets.synthetic import synthetic_spectra
from ramanid.deploy import train_bundle
from ramanid.evaluation.protocol import run_cv
from ramanid.evaluation.report import write_report
from ramanid.explain import embedding_figure, explain_spectrum
from ramanid.io.files import read_spectrum_files
from ramanid.predict import as_table, predict_spectra
from ramanid.preprocessing import pipeline_from_spec
from ramanid.targets import Task
from ramanid.training.factory import Options

PREPROCESS = "despike, arpls(lam=1e5), minmax"


def run_demo(out: str | Path = "ramanid-demo", epochs: int = 40, per_mineral: int = 16, log=print) -> dict:
    """Run the demo into ``out``; returns the headline figures."""
    start = time.perf_counter()
    out = mark_folder(out, "demo")
    raw = synthetic_spectra(per_mineral, random_state=0)
    spectra = raw.subset(np.arange(len(raw)))
    spectra.intensities = pipeline_from_spec(PREPROCESS, raw.shifts).fit_transform(raw.intensities).astype(np.float32)
    spectra.info = {"source": "synthetic", "method": "linear", "preprocess": PREPROCESS}
    spectra.save(out / "synthetic.npz")
    log(
        f"1. built {len(spectra)} synthetic spectra of {spectra.meta['mineral'].nunique()} minerals "
        f"(preprocessing: {PREPROCESS})"
    )

    options = Options(epochs=epochs)
    cv = run_cv(
        spectra,
        task="mineral",
        models=["ramannet", "lr"],
        split="stratified",
        folds=3,
        options=options,
        log=lambda _: None,
    )
    write_report(cv, mark_folder(out / "cv", "cv"))
    accuracy = {m: d["summary"]["accuracy"]["mean"] for m, d in cv["models"].items()}
    log(
        "2. 3-fold stratified cross-validation, accuracy: "
        + ", ".join(f"{m} {a:.3f}" for m, a in accuracy.items())
        + f"  (report: {out / 'cv' / 'report.md'})"
    )

    bundle = train_bundle(
        spectra,
        task=Task.parse("mineral"),
        model="ramannet",
        options=options,
        seed=0,
        folder=out / "model",
        log=lambda _: None,
    )
    log(
        f"3. trained RamanNet on all spectra, saved to {out / 'model'} "
        f"(validation accuracy {bundle.info.validation['metrics']['accuracy']:.3f})"
    )

    examples = _write_examples(out / "examples")
    files, _ = read_spectrum_files([examples])
    predictions, refused = predict_spectra(bundle, files, top=3)
    table = as_table(predictions)
    with atomic_write(out / "predictions.csv") as tmp:
        table.to_csv(tmp, index=False)
    log("4. predictions for the example files:")
    for row in table.itertuples():
        log(
            f"   {Path(row.file).name:28s} -> {row.top1:12s} p={row.p1:.2f}"
            + (
                "   but UNKNOWN: unlike the training spectra (p is shared among known classes only)"
                if row.unknown
                else ""
            )
        )

    known = next(f for f, p in zip(files, predictions, strict=False) if not p.unknown)
    target, explained = explain_spectrum(bundle, known, out / "explain.png")
    log(f"5. explained the prediction {target!r} for {Path(known.source).name}: {explained}")
    scores, embedded = embedding_figure(bundle, spectra, out / "embed.png")
    log("6. embedding map: " + ", ".join(f"{k}: silhouette {v:.3f}" for k, v in scores.items()) + f" ({embedded})")
    wall = time.perf_counter() - start
    log(f"done in {wall:.0f} s; everything is in {out}")
    log(f"to identify your own files on a web page: ramanid serve {out / 'model'}  (then open http://127.0.0.1:8000/)")
    return {"accuracy": accuracy, "unknown": table["unknown"].tolist(), "silhouette": scores, "wall_s": wall}


def _write_examples(folder: Path) -> Path:
    """Three unseen synthetic spectra as two-column CSV files, and one that is no mineral at all."""
    folder.mkdir(parents=True, exist_ok=True)
    fresh = synthetic_spectra(1, minerals=["Calcite", "Quartz", "Baryte"], random_state=99)
    for row, mineral in zip(fresh.intensities, fresh.meta["mineral"], strict=False):
        np.savetxt(
            folder / f"unknown_sample_{mineral.lower()}.csv",
            np.column_stack([fresh.shifts, row]),
            delimiter=",",
            header="shift_cm-1,intensity",
            comments="",
            fmt="%.4f",
        )
    rng = np.random.default_rng(7)
    shifts = np.linspace(150, 1500, 900)
    fluorescence = 1000 * np.exp(-(((shifts - 900) / 500) ** 2)) + 20 * rng.normal(size=shifts.size)
    np.savetxt(
        folder / "not_a_mineral.csv",
        np.column_stack([shifts, fluorescence]),
        delimiter=",",
        header="shift_cm-1,intensity",
        comments="",
        fmt="%.4f",
    )
    return folder
