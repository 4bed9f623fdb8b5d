"""The ``ramanid`` command: a thin layer over the library's functions."""
from __future__ import annotations

import sys

import click

from ramanid.errors import RamanIdError


class _FriendlyGroup(click.Group):
    """Report ramanid's own errors as one clear line and exit code 2, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RamanIdError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ramanid")
def main():
    """Identify minerals, their elements and other sample classes from Raman spectra."""


@main.group()
def build():
    """Build a dataset file (a SpectraSet) from spectra on disk."""


def _wavelengths(values: tuple[str, ...]):
    if any(v.lower() == "all" for v in values):
        return None
    try:
        return [float(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(f"{values}: expected numbers in nm, or 'all'") from exc


def _training_options(f):
    """The reference's training options, shared by cv and train."""
    for option in reversed([
        click.option("--task", default="mineral", show_default=True, help="mineral, elements or label:COLUMN."),
        click.option("--elements", default="Mg,Al,P,S,Fe,Cu", show_default=True, help="For --task elements."),
        click.option("--epochs", type=click.IntRange(1), default=100, show_default=True),
        click.option("--lr", type=float, default=None, help="Learning rate (default: the model's published one)."),
        click.option("--wd", "weight_decay", type=float, default=None, help="Weight decay."),
        click.option("--hidden", type=click.IntRange(1), default=None,
                     help="Hidden size of attention/ResNet/RamanNet."),
        click.option("--device", default=None, help="cpu, cuda or mps (default: the best available)."),
        click.option("--precision", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto",
                     show_default=True, help="Training precision. auto: float16 mixed precision on CUDA, float32 "
                     "elsewhere; bfloat16: about 2.4x faster CNN training on CPUs with AVX-512 BF16."),
        click.option("--seed", type=int, default=0, show_default=True),
    ]):
        f = option(f)
    return f


def _task_and_options(task, elements, epochs, lr, weight_decay, hidden, device, precision):
    from ramanid.evaluation.protocol import Options, Task

    element_list = [e.strip() for e in elements.split(",") if e.strip()]
    return Task.parse(task, element_list), Options(epochs=epochs, lr=lr, weight_decay=weight_decay, hidden=hidden,
                                                   device=device, precision=precision)


@build.command("rruff")
@click.option("--source", required=True, type=click.Path(exists=True),
              help="The official RRUFF zip (read without unpacking) or a folder of .txt files.")
@click.option("--wavelength", "wavelengths", multiple=True, default=("780",), show_default=True,
              help="Excitation wavelength in nm; repeat for several, or 'all'.")
@click.option("--kind", type=click.Choice(["processed", "raw", "all"]), default="processed", show_default=True)
@click.option("--min-per-mineral", type=click.IntRange(1), default=2, show_default=True,
              help="Drop minerals with fewer spectra (10 for the RamanNet protocol).")
@click.option("--grid", default="100:1400:1024", show_default=True,
              help="START:STOP:POINTS in cm-1, or auto:SHARE:POINTS for the range SHARE of the spectra cover.")
@click.option("--resample", "method", type=click.Choice(["linear", "cubic", "pchip"]), default="linear",
              show_default=True)
@click.option("--min-coverage", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Drop spectra that cover less than this share of the grid.")
@click.option("--preprocess", default="minmax", show_default=True,
              help="Applied after resampling: a preset (reference, robust) or steps, e.g. "
                   "'despike, arpls(lam=1e5), savgol(window_length=15), vector'.")
@click.option("--jobs", type=click.IntRange(1), default=None, help="Worker processes (default: all cores).")
@click.option("--strict", is_flag=True, help="Stop at the first unreadable file instead of skipping it.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .npz file to write.")
def build_rruff_command(source, wavelengths, kind, min_per_mineral, grid, method, min_coverage, preprocess,
                        jobs, strict, out):
    """Build a RRUFF set: read, filter, resample onto one grid, scale, save."""
    from ramanid.datasets.rruff import build_rruff

    result = build_rruff(
        source, wavelengths=_wavelengths(wavelengths), kind=kind, min_per_mineral=min_per_mineral,
        grid=grid, method=method, min_coverage=min_coverage, preprocess=preprocess,
        jobs=jobs, strict=strict, progress=True,
    )
    result.spectra.save(out)
    click.echo(result.summary())
    click.echo(f"written: {out}")



@build.command("bacteria")
@click.option("--source", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder with X_reference.npy, y_reference.npy, X_finetune.npy, y_finetune.npy, X_test.npy, "
                   "y_test.npy (and wavenumbers.npy if you have it).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .npz file to write.")
def build_bacteria_command(source, out):
    """Build the Bacteria-ID set (Ho et al. 2019); its 'role' column drives --split predefined:role."""
    from ramanid.datasets.bacteria_id import load_bacteria_id

    spectra = load_bacteria_id(source)
    spectra.save(out)
    click.echo(f"spectra: {len(spectra)}; roles: {spectra.meta['role'].value_counts().to_dict()}; "
               f"isolates: {spectra.meta['label'].nunique()}; axis: {spectra.info['axis']}")
    click.echo(f"written: {out}")


@build.command("covid")
@click.option("--source", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder with train_x.npy, train_y.npy, test_x.npy, test_y.npy, wavenumber.npy, label.json.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .npz file to write.")
def build_covid_command(source, out):
    """Build the COVID-19 serum set (Yin et al. 2021): all 465 spectra in one file."""
    from ramanid.datasets.covid_serum import load_covid_serum

    spectra = load_covid_serum(source)
    spectra.save(out)
    click.echo(f"spectra: {len(spectra)}; labels: {spectra.meta['label'].value_counts().to_dict()}")
    click.echo(f"written: {out}")



@main.command("cv")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A SpectraSet file written by 'ramanid build'.")
@click.option("--model", "models", multiple=True, default=("ramannet",), show_default=True,
              help="Repeat for several: ramannet, attention_resnet, seed_attention, liu2017_cnn, ho2019_resnet, "
                   "mlp, lr, svm, knn, rf, pca_lr, library.")
@click.option("--split", default="stratified", show_default=True,
              help="kfold, stratified, grouped:COLUMN, repeated-holdout, logo:COLUMN or predefined:COLUMN.")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True,
              help="Folds (or repeats for repeated-holdout: default 50).")
@_training_options
@click.option("--ensemble", type=click.IntRange(1), default=1, show_default=True,
              help="Average N networks trained from seeds S..S+N-1 (mineral and label tasks).")
@click.option("--jobs", type=click.IntRange(1), default=1, show_default=True, help="Folds run in parallel.")
@click.option("--backend", type=click.Choice(["joblib", "dask"]), default="joblib", show_default=True)
@click.option("--scheduler", default=None, help="dask.distributed scheduler address, with --backend dask.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Folder for results.json, results.csv, report.md and figures; finished folds are cached here.")
def cv_command(data, task, models, split, folds, seed, elements, epochs, lr, weight_decay, hidden, device,
               precision, ensemble, jobs, backend, scheduler, out):
    """Cross-validate one or more models on the same folds and write a report."""
    from pathlib import Path

    from ramanid.evaluation.protocol import run_cv
    from ramanid.evaluation.report import write_report
    from ramanid.spectra import SpectraSet

    spectra = SpectraSet.load(data)
    task, options = _task_and_options(task, elements, epochs, lr, weight_decay, hidden, device, precision)
    options.ensemble = ensemble
    result = run_cv(spectra, task, models, split, folds, seed, options, n_jobs=jobs,
                    backend=backend, scheduler=scheduler, cache_dir=Path(out) / "folds", log=click.echo)
    write_report(result, out)
    click.echo((Path(out) / "report.md").read_text())



@main.command("train")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A SpectraSet file written by 'ramanid build'.")
@click.option("--model", default="ramannet", show_default=True,
              help="ramannet, attention_resnet, seed_attention, liu2017_cnn, ho2019_resnet or mlp.")
@_training_options
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The model folder to write.")
def train_command(data, model, task, elements, epochs, lr, weight_decay, hidden, device, precision, seed, out):
    """Train on all the data and save a model folder for predict and explain."""
    from ramanid.bundle import train_bundle
    from ramanid.spectra import SpectraSet

    task, options = _task_and_options(task, elements, epochs, lr, weight_decay, hidden, device, precision)
    bundle = train_bundle(SpectraSet.load(data), task, model, options, seed, out, log=click.echo)
    metrics = bundle.info["validation"]["metrics"]
    headline = (f"macro ROC AUC {metrics['macro_roc_auc']:.3f}" if task.kind == "elements"
                else f"accuracy {metrics['accuracy']:.3f}")
    click.echo(f"validation ({bundle.info['validation']['n_spectra']} spectra): {headline}")
    click.echo(f"out-of-distribution threshold (cosine): {bundle.info['ood']['threshold']:.3f}")
    click.echo(f"written: {out}")


@main.command("predict")
@click.argument("model_dir", type=click.Path())
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--top", type=click.IntRange(1), default=5, show_default=True, help="How many classes to list.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
def predict_command(model_dir, paths, top, fmt):
    """Identify the spectra in files, folders or RRUFF zips with a saved model."""
    import dataclasses
    import json

    from ramanid.bundle import load_bundle
    from ramanid.io.files import read_spectrum_files
    from ramanid.predict import as_table, predict_spectra

    bundle = load_bundle(model_dir)
    spectra, skipped = read_spectrum_files(paths)
    results, refused = predict_spectra(bundle, spectra, top=top)
    if fmt == "json":
        click.echo(json.dumps([dataclasses.asdict(r) for r in results], indent=1, default=str))
    elif fmt == "csv":
        click.echo(as_table(results).to_csv(index=False), nl=False)
    elif results:
        click.echo(as_table(results).to_string(index=False))
    for s in skipped + refused:
        click.echo(f"skipped: {s.reason}", err=True)
    if not results:
        raise SystemExit(2)


@main.command("explain")
@click.argument("model_dir", type=click.Path())
@click.argument("file", type=click.Path())
@click.option("--target", default=None, help="Class or element to explain (default: the predicted one).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The PNG to write.")
def explain_command(model_dir, file, target, out):
    """Draw a spectrum with integrated-gradients attributions and its best reference match."""
    from pathlib import Path

    from ramanid.bundle import load_bundle
    from ramanid.explain import explain_spectrum
    from ramanid.io.files import read_one

    target, path = explain_spectrum(load_bundle(model_dir), read_one(Path(file))[0], out, target)
    click.echo(f"explained {target}: {path}")


@main.command("embed")
@click.argument("model_dir", type=click.Path())
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False), help="A SpectraSet file.")
@click.option("--label", default="mineral", show_default=True, help="Metadata column that colours the points.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The PNG to write.")
def embed_command(model_dir, data, label, out):
    """Map the model's embeddings in 2-D beside a PCA map of the spectra."""
    from ramanid.bundle import load_bundle
    from ramanid.explain import embedding_figure
    from ramanid.spectra import SpectraSet

    scores, path = embedding_figure(load_bundle(model_dir), SpectraSet.load(data), out, label)
    for name, score in scores.items():
        click.echo(f"{name}: silhouette {score:.3f}")
    click.echo(f"written: {path}")


@main.command("demo")
@click.option("--out", default="ramanid-demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--epochs", type=click.IntRange(1), default=40, show_default=True)
def demo_command(out, epochs):
    """Offline demo on synthetic spectra: build, cross-validate, train, predict, explain, embed."""
    from ramanid.demo import run_demo

    run_demo(out, epochs=epochs, log=click.echo)


if __name__ == "__main__":  # pragma: no cover
    main()
