"""The ``ramanid`` command: a thin layer over the library's functions."""

from __future__ import annotations

import sys

import click

from ramanid.errors import RamanIdError, printable

#: the identifier's preprocessing: spikes out, fluorescence baseline out (arPLS, Baek et al. 2015), min-max
IDENTIFIER_PREPROCESS = "despike, arpls, minmax"

#: exit code for bad data, files or model folders (click itself uses 2 for bad usage)
DATA_ERROR = 1


class _FriendlyGroup(click.Group):
    """Report ramanid's own errors as one clear line and exit code 1, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RamanIdError as exc:
            click.echo(f"error: {printable(exc)}", err=True)
            sys.exit(DATA_ERROR)


def _output_file(ctx, param, value):
    """Refuse an output file that cannot or must not be written, before any work starts."""
    return _checked_output(value, folder=False)


def _output_folder(kind: str):
    """A callback refusing an output folder that cannot be written, or that holds anything of the
    user's where ramanid would write a ``kind`` folder (:data:`ramanid.atomic.OWN_FOLDERS`), before
    any work starts.
    """
    return lambda ctx, param, value: _checked_output(value, folder=True, kind=kind)


def _checked_output(value, folder: bool, kind: str | None = None):
    from ramanid.atomic import check_output

    if value is not None:
        try:
            check_output(value, folder=folder, kind=kind)
        except RamanIdError as exc:
            raise click.BadParameter(str(exc)) from exc
    return value


#: the widest network ``--hidden`` may ask for (a typo of a few zeros would allocate hundreds of GB)
MAX_WIDTH = 4096


def _finite(ctx, param, value):
    """Refuse NaN, which every range check lets through."""
    if value is not None and value != value:
        raise click.BadParameter("nan is not a number")
    return value


def _device(ctx, param, value):
    """Refuse a device this machine does not have, before any work starts."""
    if value not in (None, "auto"):
        from ramanid.training.trainer import check_device

        try:
            check_device(value)
        except RamanIdError as exc:
            raise click.BadParameter(str(exc)) from exc
    return value


class _ModelOption(click.Option):
    """``--model``, whose help lists the registry's models when help is asked for (so that the
    command starts without importing torch).
    """

    def get_help_record(self, ctx):
        from ramanid.models import MODELS, user_models
        from ramanid.training.baselines import CLASSICAL

        lines = [f"{name}: {MODELS[name].description}." for name in user_models()]
        lines.append(f"Classical baselines: {', '.join(CLASSICAL)}.")
        lines.append("For elements, NETWORK+vote blends a network with formula_vote (weight chosen on validation).")
        lines.append(
            "For labels with groups: MODEL+epo projects out how each class differs between the training "
            "groups; MODEL+by_group standardises each group on its own (cv only)."
        )
        self.help = f"{self.help} " + " ".join(lines)
        return super().get_help_record(ctx)


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
    for option in reversed(
        [
            click.option("--task", default="mineral", show_default=True, help="mineral, elements or label:COLUMN."),
            click.option(
                "--elements",
                default="Mg,Al,P,S,Fe,Cu",
                show_default=True,
                help="For --task elements; 'all': every element found in 30 or more minerals of the set.",
            ),
            click.option(
                "--chemistry",
                type=click.Choice(["ideal", "measured"]),
                default="ideal",
                show_default=True,
                help="Element labels from RRUFF's IDEAL CHEMISTRY formula, or its MEASURED CHEMISTRY line "
                "(files without one are left out).",
            ),
            click.option(
                "--positive",
                default=None,
                help="The positive class of a binary task (default: the second label in sorted order).",
            ),
            click.option("--epochs", type=click.IntRange(1), default=100, show_default=True),
            click.option(
                "--lr",
                type=click.FloatRange(0, 10, min_open=True),
                callback=_finite,
                default=None,
                help="Learning rate (default: the model's published one).",
            ),
            click.option(
                "--wd",
                "weight_decay",
                type=click.FloatRange(0, 1),
                callback=_finite,
                default=None,
                help="Weight decay.",
            ),
            click.option(
                "--hidden",
                type=click.IntRange(1, MAX_WIDTH),
                default=None,
                help="Width of the network (the width parameter its registry entry names).",
            ),
            click.option(
                "--device", default=None, callback=_device, help="cpu, cuda or mps (default: the best available)."
            ),
            click.option(
                "--precision",
                type=click.Choice(["auto", "float32", "bfloat16"]),
                default="auto",
                show_default=True,
                help="Training precision. auto: float16 mixed precision on CUDA, float32 "
                "elsewhere; bfloat16: about 2.4x faster CNN training on CPUs with AVX-512 BF16.",
            ),
            click.option("--seed", type=int, default=0, show_default=True),
            click.option(
                "--budget",
                type=click.FloatRange(0, min_open=True),
                default=None,
                metavar="MINUTES",
                help="For --model auto: the minutes its choice may take on each training part; candidates "
                "are tried cheapest first, and those not started when it is spent are left out.",
            ),
            click.option(
                "--preprocess",
                default=None,
                help="Steps run inside each fold on top of the set's own (fitted on training rows only), "
                "e.g. 'arpls, snv'; or 'auto' to pick among a few presets by inner cross-validation on "
                "the training part. A saved model repeats them in predict.",
            ),
            click.option(
                "--tune",
                multiple=True,
                metavar="NAME=V1,V2",
                help="Choose a training option among values by inner cross-validation on the training part "
                "(grouped as the split is), e.g. --tune lr=0.01,0.001 --tune hidden=32,64; NAME is lr, wd, "
                "hidden, batch_size, epochs, patience, augment (none, default), or model.PARAMETER for a "
                "parameter of the network (e.g. model.whole=true,false; formula_vote's neighbours: model.k=5,20). "
                "Repeat for several: every "
                "combination is tried.",
            ),
        ]
    ):
        f = option(f)
    return f


def _task_and_options(
    task,
    elements,
    chemistry,
    positive,
    epochs,
    lr,
    weight_decay,
    hidden,
    device,
    precision,
    seed,
    budget,
    preprocess,
    tune,
):
    """``(task, options, seed)`` from the options of :func:`_training_options`."""
    from ramanid.targets import Task
    from ramanid.training.factory import Options
    from ramanid.training.selection import parse_tune

    element_list = [e.strip() for e in elements.split(",") if e.strip()]
    return (
        Task.parse(task, element_list, positive=positive, chemistry=chemistry),
        Options(
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            hidden=hidden,
            device=device,
            precision=precision,
            preprocess=preprocess,
            tune=parse_tune(tune),
            budget_minutes=budget,
        ),
        seed,
    )


def _reading_options(f):
    """How files are read: the laser for axes that need one, and an instrument's calibration."""
    for option in reversed(
        [
            click.option(
                "--laser",
                "laser_nm",
                type=click.FloatRange(150, 2500),
                default=None,
                help="Excitation wavelength in nm, for files whose axis is a wavelength, an absolute wavenumber or "
                "an energy and that do not say it.",
            ),
            click.option(
                "--calibration",
                type=click.Path(exists=True, dir_okay=False),
                default=None,
                help="An instrument's axis correction, written by 'ramanid calibrate', applied to every spectrum read.",
            ),
        ]
    ):
        f = option(f)
    return f


def _mixture_options(f):
    """``--mixture`` and ``--max-components``, for predict and map."""
    f = click.option(
        "--max-components",
        type=click.IntRange(1, 5),
        default=3,
        show_default=True,
        help="With --mixture: the most minerals to name in one spectrum.",
    )(f)
    return click.option(
        "--mixture",
        is_flag=True,
        help="Name every mineral of each spectrum, with its share of the signal (library identifiers; slower).",
    )(f)


def _read(paths, laser_nm, calibration):
    """``(spectra, skipped)`` of ``paths`` read with the options of :func:`_reading_options`."""
    from ramanid.io.calibration import AxisCorrection
    from ramanid.io.files import read_spectrum_files

    correction = AxisCorrection.load(calibration) if calibration else None
    return read_spectrum_files(paths, laser_nm, correction)


def _rruff_source(wavelength: str, kind: str):
    """The options that say which RRUFF spectra to read: source, wavelengths, kind."""

    def decorate(f):
        for option in reversed(
            [
                click.option(
                    "--source",
                    required=True,
                    type=click.Path(exists=True),
                    help="The official RRUFF zip (read without unpacking) or a folder of .txt files.",
                ),
                click.option(
                    "--wavelength",
                    "wavelengths",
                    multiple=True,
                    default=(wavelength,),
                    show_default=True,
                    help="Excitation wavelength in nm; repeat for several, or 'all'.",
                ),
                click.option("--kind", type=click.Choice(["processed", "raw", "all"]), default=kind, show_default=True),
            ]
        ):
            f = option(f)
        return f

    return decorate


@build.command("rruff")
@_rruff_source(wavelength="780", kind="processed")
@click.option(
    "--min-per-mineral",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Drop minerals with fewer spectra (10 for the RamanNet protocol).",
)
@click.option(
    "--grid",
    default="100:1400:1024",
    show_default=True,
    help="START:STOP:POINTS in cm-1, or auto:SHARE:POINTS for the range SHARE of the spectra cover.",
)
@click.option(
    "--resample", "method", type=click.Choice(["linear", "cubic", "pchip"]), default="linear", show_default=True
)
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Drop spectra that cover less than this share of the grid.",
)
@click.option(
    "--preprocess",
    default="minmax",
    show_default=True,
    help="Applied after resampling: a preset (reference, robust) or steps, e.g. "
    "'despike, arpls(lam=1e5), savgol(window_length=15), vector'.",
)
@click.option("--jobs", type=click.IntRange(1), default=None, help="Worker processes (default: all cores).")
@click.option("--strict", is_flag=True, help="Stop at the first unreadable file instead of skipping it.")
@click.option(
    "--max-member-mb",
    type=click.FloatRange(0, min_open=True),
    default=64,
    show_default=True,
    help="Skip zip members larger than this once decompressed (zip bombs).",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), callback=_output_file, help="The .npz file to write."
)
def build_rruff_command(
    source,
    wavelengths,
    kind,
    min_per_mineral,
    grid,
    method,
    min_coverage,
    preprocess,
    jobs,
    strict,
    max_member_mb,
    out,
):
    """Build a RRUFF set: read, filter, resample onto one grid, scale, save."""
    from ramanid.datasets.rruff import build_rruff

    result = build_rruff(
        source,
        wavelengths=_wavelengths(wavelengths),
        kind=kind,
        min_per_mineral=min_per_mineral,
        grid=grid,
        method=method,
        min_coverage=min_coverage,
        preprocess=preprocess,
        jobs=jobs,
        strict=strict,
        progress=True,
        max_member_bytes=int(max_member_mb * 2**20),
    )
    result.spectra.save(out)
    click.echo(result.summary())
    click.echo(f"written: {out}")


@build.command("bacteria")
@click.option(
    "--source",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder with X_reference.npy, y_reference.npy, X_finetune.npy, y_finetune.npy, X_test.npy, "
    "y_test.npy (and wavenumbers.npy if you have it).",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), callback=_output_file, help="The .npz file to write."
)
def build_bacteria_command(source, out):
    """Build the Bacteria-ID set (Ho et al. 2019); its 'role' column drives --split predefined:role."""
    from ramanid.datasets.bacteria_id import load_bacteria_id

    spectra = load_bacteria_id(source)
    spectra.save(out)
    click.echo(
        f"spectra: {len(spectra)}; roles: {spectra.meta['role'].value_counts().to_dict()}; "
        f"isolates: {spectra.meta['label'].nunique()}; axis: {spectra.info['axis']}"
    )
    click.echo(f"written: {out}")


@build.command("table")
@click.option(
    "--source",
    required=True,
    type=click.Path(exists=True),
    help="A wide CSV (.csv, .tsv, .gz: shifts as numeric column titles), a folder of two-column "
    "files, or a .npy matrix.",
)
@click.option("--label", default=None, help="The column holding each spectrum's class (copied to 'label').")
@click.option(
    "--group",
    default=None,
    help="The column holding each spectrum's group: patient, culture, specimen (copied to 'group').",
)
@click.option(
    "--labels",
    "sheet",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="For a folder: a CSV with a 'file' column and the label and group columns.",
)
@click.option(
    "--axis",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="For a .npy matrix: its shift axis (.npy).",
)
@click.option(
    "--grid",
    default=None,
    help="For files on different axes: START:STOP:POINTS or auto:SHARE:POINTS (default: the range every file covers).",
)
@_reading_options
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), callback=_output_file, help="The .npz file to write."
)
def build_table_command(source, label, group, sheet, axis, grid, laser_nm, calibration, out):
    """Build a set from your own labelled spectra, for cv and train (--task label:label, --split grouped:group)."""
    from ramanid.datasets.table import build_table
    from ramanid.io.calibration import AxisCorrection

    correction = AxisCorrection.load(calibration) if calibration else None
    spectra = build_table(
        source, label=label, group=group, labels=sheet, axis=axis, grid=grid, laser_nm=laser_nm, calibration=correction
    )
    spectra.save(out)
    click.echo(
        f"spectra: {len(spectra)}; points: {len(spectra.shifts)} ({spectra.shifts[0]:.1f}-"
        f"{spectra.shifts[-1]:.1f} cm-1); columns: {list(spectra.meta.columns)}"
    )
    if label:
        click.echo(f"labels: {spectra.meta['label'].value_counts().to_dict()}")
    if group:
        click.echo(f"groups: {spectra.meta['group'].nunique()} (use --split grouped:group for the honest figure)")
    click.echo(f"written: {out}")


@build.command("covid")
@click.option(
    "--source",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="Folder with train_x.npy, train_y.npy, test_x.npy, test_y.npy, wavenumber.npy, label.json.",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), callback=_output_file, help="The .npz file to write."
)
def build_covid_command(source, out):
    """Build the COVID-19 serum set (Yin et al. 2021): all 465 spectra in one file."""
    from ramanid.datasets.covid_serum import load_covid_serum

    spectra = load_covid_serum(source)
    spectra.save(out)
    click.echo(f"spectra: {len(spectra)}; labels: {spectra.meta['label'].value_counts().to_dict()}")
    click.echo(f"written: {out}")


@main.command("cv")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A SpectraSet file written by 'ramanid build'.",
)
@click.option(
    "--model",
    "models",
    cls=_ModelOption,
    multiple=True,
    default=("ramannet",),
    show_default=True,
    help="Repeat for several.",
)
@click.option(
    "--split",
    default="stratified",
    show_default=True,
    help="kfold, stratified, grouped:COLUMN, repeated-holdout, logo:COLUMN or predefined:COLUMN.",
)
@click.option(
    "--folds",
    type=click.IntRange(2),
    default=None,
    help="Folds (default 5), or repeats for repeated-holdout (default 50).",
)
@_training_options
@click.option(
    "--ensemble",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Average N networks trained from seeds S..S+N-1 (mineral and label tasks).",
)
@click.option(
    "--jobs",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Folds run in parallel, each on cores/JOBS threads (a last, smaller round on more).",
)
@click.option("--backend", type=click.Choice(["joblib", "dask"]), default="joblib", show_default=True)
@click.option("--scheduler", default=None, help="dask.distributed scheduler address, with --backend dask.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    callback=_output_folder("cv"),
    help="Folder for results.json, results.csv, report.md and figures; finished folds are cached here.",
)
def cv_command(data, models, split, folds, ensemble, jobs, backend, scheduler, out, **training):
    """Cross-validate one or more models on the same folds and write a report."""
    from pathlib import Path

    from ramanid.atomic import folder_lock, mark_folder
    from ramanid.evaluation.protocol import run_cv
    from ramanid.evaluation.report import write_report
    from ramanid.spectra import SpectraSet

    spectra = SpectraSet.load(data)
    task, options, seed = _task_and_options(**training)
    options.ensemble = ensemble
    with folder_lock(out):  # a second cv into the same folder is refused, not mixed in
        mark_folder(out, "cv")
        result = run_cv(
            spectra,
            task=task,
            models=models,
            split=split,
            folds=folds,
            seed=seed,
            options=options,
            n_jobs=jobs,
            backend=backend,
            scheduler=scheduler,
            cache_dir=Path(out) / "folds",
            log=click.echo,
        )
        write_report(result, out)
    click.echo((Path(out) / "report.md").read_text())


@main.command("train")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A SpectraSet file written by 'ramanid build'.",
)
@click.option("--model", cls=_ModelOption, default="ramannet", show_default=True, help="The model to train.")
@_training_options
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    callback=_output_folder("model"),
    help="The model folder to write.",
)
def train_command(data, model, out, **training):
    """Train on all the data and save a model folder for predict and explain."""
    from ramanid.deploy import train_bundle
    from ramanid.spectra import SpectraSet

    task, options, seed = _task_and_options(**training)
    bundle = train_bundle(
        SpectraSet.load(data), task=task, model=model, options=options, seed=seed, folder=out, log=click.echo
    )
    validation, ood = bundle.info.validation, bundle.info.ood
    metrics = validation["metrics"]
    headline = (
        f"macro ROC AUC {metrics['macro_roc_auc']:.3f}"
        if task.kind == "elements"
        else f"accuracy {metrics['accuracy']:.3f}"
    )
    click.echo(f"validation ({validation['n_spectra']} spectra): {headline}")
    if ood.threshold is None:
        click.echo(f"unknown flag: {ood.score}, never fires (no known validation spectrum set its threshold)")
    else:
        click.echo(f"unknown flag: {ood.score} above {ood.threshold:.4g} (95% of known validation spectra below)")
    click.echo(f"written: {out}")


@main.group()
def library():
    """A mineral identifier over a whole reference library, and adding references to it."""


@library.command("build")
@_rruff_source(wavelength="all", kind="all")
@click.option("--grid", default="100:1400:1024", show_default=True, help="START:STOP:POINTS in cm-1.")
@click.option(
    "--preprocess",
    default=IDENTIFIER_PREPROCESS,
    show_default=True,
    help="Steps after resampling; queries get the same.",
)
@click.option("--epochs", type=click.IntRange(1), default=60, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--jobs", type=click.IntRange(1), default=None, help="Worker processes (default: all cores).")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    callback=_output_folder("model"),
    help="The model folder to write.",
)
def library_build_command(source, wavelengths, kind, grid, preprocess, epochs, seed, jobs, out):
    """Build the identifier: every spectrum (all lasers, raw and processed, every mineral, singletons
    included) becomes a reference, and a RamanNet embedding is trained on them with instrument-like
    augmentation; a query is scored against every reference in that embedding and by a robust
    spectral score (intensity power, first derivative), both chosen on held-out specimens.
    """
    import time

    from ramanid.datasets.rruff import build_rruff
    from ramanid.deploy import train_identifier

    start = time.perf_counter()
    result = build_rruff(
        source,
        wavelengths=_wavelengths(wavelengths),
        kind=kind,
        min_per_mineral=1,
        grid=grid,
        preprocess=preprocess,
        jobs=jobs,
        progress=True,
    )
    click.echo(result.summary())
    bundle = train_identifier(result.spectra, folder=out, epochs=epochs, seed=seed, log=click.echo)
    size = sum(p.stat().st_size for p in bundle.path.iterdir()) / 2**20
    click.echo(f"written: {out} ({size:.1f} MB) in {time.perf_counter() - start:.0f} s")


@library.command("add")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--mineral", default=None, help="The name of the spectra (default: each RRUFF file's own name).")
@_reading_options
def library_add_command(model_dir, paths, mineral, laser_nm, calibration):
    """Add reference spectra to a model's library; predictions use them at once, without retraining."""
    from ramanid.atomic import folder_lock
    from ramanid.bundle import add_spectra, load_bundle

    with folder_lock(model_dir, beside=True):  # two additions at once would lose one of them
        bundle = load_bundle(model_dir)
        spectra, skipped = _read(paths, laser_nm, calibration)
        for s in skipped:
            click.echo(f"skipped: {printable(s.reason)}", err=True)
        try:
            bundle, added, refused = add_spectra(bundle, spectra, mineral, log=lambda line: click.echo(line, err=True))
        except KeyboardInterrupt:
            saved = _added_references(model_dir) - _added_references(bundle.path, bundle.header)
            done = f"{saved} reference{'s' * (saved != 1)} had been added" if saved else "nothing was added"
            click.echo(f"interrupted: {done}; the model folder is whole", err=True)
            sys.exit(130)
    for s in refused:
        click.echo(f"skipped: {printable(s.reason)}", err=True)
    click.echo(
        f"added {added} references; the library holds {len(bundle.library)} spectra of {bundle.minerals} minerals"
    )


def _added_references(model_dir, header: dict | None = None) -> int:
    """How many references were added to a model folder's library (from its header)."""
    from pathlib import Path

    from ramanid.bundle.folder import read_header

    header = header if header is not None else read_header(Path(model_dir))
    return int((header.get("data") or {}).get("added_references", 0))


@main.command("predict")
@click.argument("model_dir", type=click.Path())
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--top", type=click.IntRange(1), default=5, show_default=True, help="How many classes to list.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table: a line per spectrum; csv: every class, probability, element and reference; json: all of it.",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.95,
    show_default=True,
    help="Coverage of the conformal answer set: with spectra like the validation ones, the true class is in "
    "the set at least this often.",
)
@_mixture_options
@_reading_options
def predict_command(model_dir, paths, top, fmt, confidence, mixture, max_components, laser_nm, calibration):
    """Identify the spectra in files, folders or RRUFF zips with a saved model (every format 'ramanid read' reads)."""
    import json

    from ramanid.bundle import load_bundle
    from ramanid.predict import as_lines, as_table, predict_spectra

    bundle = load_bundle(model_dir)
    spectra, skipped = _read(paths, laser_nm, calibration)
    if not spectra and not skipped:
        raise RamanIdError(f"no spectra found in {', '.join(paths)}")
    results, refused = predict_spectra(
        bundle, spectra, top=top, confidence=confidence, mixture=max_components if mixture else None
    )
    if fmt == "json":
        click.echo(json.dumps([r.as_json() for r in results], indent=1))
    elif fmt == "csv":
        click.echo(as_table(results).to_csv(index=False), nl=False)
    elif results:
        table = as_lines(results)
        click.echo(table.map(lambda v: printable(v) if isinstance(v, str) else v).to_string(index=False))
    for s in skipped + refused:
        click.echo(f"skipped: {printable(s.reason)}", err=True)
    if not results:
        raise SystemExit(DATA_ERROR)


@main.command("explain")
@click.argument("model_dir", type=click.Path())
@click.argument("file", type=click.Path())
@click.option("--target", default=None, help="Class or element to explain (default: the predicted one).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), callback=_output_file, help="The PNG to write.")
@_reading_options
def explain_command(model_dir, file, target, out, laser_nm, calibration):
    """Draw a spectrum with integrated-gradients attributions and its best reference match."""
    from ramanid.bundle import load_bundle
    from ramanid.explain import explain_spectrum

    spectra, skipped = _read([file], laser_nm, calibration)
    if skipped:
        raise RamanIdError(skipped[0].reason)
    if not spectra:
        raise RamanIdError(f"{file}: holds no spectrum to explain")
    if len(spectra) > 1:
        click.echo(f"{file} holds {len(spectra)} spectra: explaining the first, {spectra[0].source}", err=True)
    target, path = explain_spectrum(
        load_bundle(model_dir), spectra[0], out, target, log=lambda m: click.echo(m, err=True)
    )
    click.echo(f"explained {target}: {path}")


@main.command("embed")
@click.argument("model_dir", type=click.Path())
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False), help="A SpectraSet file.")
@click.option("--label", default="mineral", show_default=True, help="Metadata column that colours the points.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), callback=_output_file, help="The PNG to write.")
def embed_command(model_dir, data, label, out):
    """Map the model's embeddings in 2-D beside a PCA map of the spectra."""
    from ramanid.bundle import load_bundle
    from ramanid.explain import embedding_figure
    from ramanid.spectra import SpectraSet

    scores, path = embedding_figure(load_bundle(model_dir), SpectraSet.load(data), out, label)
    for name, score in scores.items():
        click.echo(f"{name}: silhouette {score:.3f} (of the classes before the projection, cosine distance)")
    click.echo(f"written: {path}")


@main.command("serve")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; the default is this machine only. Another host serves the network.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--max-upload-mb", type=click.FloatRange(0, min_open=True), default=50, show_default=True)
@click.option("--max-files", type=click.IntRange(1), default=200, show_default=True, help="Files per request.")
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=120,
    show_default=True,
    help="Seconds a request may take.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Worker processes, each holding the model: requests answered at once.",
)
@_reading_options
def serve_command(model_dir, host, port, max_upload_mb, max_files, timeout, workers, laser_nm, calibration):
    """A local web page over a saved model: drop spectrum files, see answers, overlays and attributions."""
    from ramanid.io.calibration import AxisCorrection
    from ramanid.serve import Limits, Reading, serve

    reading = Reading(laser_nm, AxisCorrection.load(calibration) if calibration else None)
    limits = Limits(max_upload_mb, max_files, timeout, workers=workers)
    serve(model_dir, host, port, limits, reading=reading, log=click.echo)


@main.command("map")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("map_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    callback=_output_folder("map"),
    help="The folder to write.",
)
@_mixture_options
@_reading_options
@click.option("--axis", type=click.Path(exists=True, dir_okay=False), default=None, help="For an .npy cube: its axis.")
@click.option("--chunk", type=click.IntRange(1), default=1000, show_default=True, help="Pixels per chunk.")
@click.option(
    "--confidence",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Give each pixel its conformal answer set at this coverage (pixels.csv, column answer_set).",
)
@click.option(
    "--baseline",
    type=click.Choice(["fast", "model"]),
    default="fast",
    show_default=True,
    help="fast: the one-pass morphological baseline (map speed), and the model's own for pixels whose background "
    "is over 98% of their signal; model: the model's own (arPLS) for every pixel, a tenth as fast.",
)
@click.option(
    "--neighbourhood",
    type=click.Choice(["off", "majority", "segments"]),
    default="off",
    show_default=True,
    help="majority: each pixel takes the phase of the largest summed probability over its 3 x 3 neighbours; "
    "segments: that, then each region of one phase (10 pixels or more) takes the answer for its mean spectrum.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    default=None,
    help="Chunks answered at once in this process [default: one per core].",
)
@click.option("--workers", type=click.IntRange(1), default=None, help="Start a local dask cluster of N workers.")
@click.option("--scheduler", default=None, help="Send the chunks to the dask.distributed scheduler at this address.")
@click.option(
    "--resume", is_flag=True, help="Reuse the chunks an interrupted run of the same map and options finished."
)
def map_command(
    model_dir, map_file, out, mixture, max_components, laser_nm, calibration, axis, chunk, confidence, baseline,
    neighbourhood, threads, workers, scheduler, resume,
):  # fmt: skip
    """Identify every pixel of a Raman map: a phase map, each pixel's answer, a summary and a report."""
    import shutil
    import time
    from pathlib import Path

    import numpy as np

    from ramanid.bundle import load_bundle
    from ramanid.bundle.inputs import NO_SIGNAL, NOT_MEASURED
    from ramanid.io.calibration import AxisCorrection
    from ramanid.maps import MapOptions, map_answers, read_map, summary, write_map

    bundle = load_bundle(model_dir)
    correction = AxisCorrection.load(calibration) if calibration else None
    data = read_map(map_file, laser_nm, correction, axis)
    probe = bundle.prepare_rows(data.shifts, np.asarray(data.intensities[:1], dtype=float))
    if probe.problems and probe.problems[0] not in (NO_SIGNAL, NOT_MEASURED):  # a problem of every pixel
        raise RamanIdError(f"{map_file}: {probe.problems[0]}")
    options = MapOptions(chunk, max_components if mixture else None, confidence, baseline == "fast", neighbourhood)
    cache = Path(out).parent / f".{Path(out).name}.chunks"
    if cache.exists() and not resume:
        shutil.rmtree(cache)
    start = time.perf_counter()
    with _dask_client(workers, scheduler) as client:
        table = map_answers(bundle, data, options, cache=cache, client=client, threads=threads)
    wall = time.perf_counter() - start
    write_map(out, bundle, data, table)
    shutil.rmtree(cache, ignore_errors=True)
    phases = summary(table)
    speed = f"{len(data)} pixels in {wall:.1f} s ({len(data) / max(wall, 1e-9):.0f} pixels/s)"
    click.echo(speed + (f"; {data.facts['note']}" if "note" in data.facts else ""))
    for row in phases.head(12).itertuples():
        line = f"  {printable(row.phase)}: {row.pixels} pixels, {row.area_share:.1%}"
        if row.mean_probability == row.mean_probability:  # the pixels not answered have none
            line += f", mean probability {row.mean_probability:.2f}"
        else:
            line += " of the map"
        click.echo(line)
    click.echo(f"written: {out}")


def _dask_client(workers, scheduler):
    """A dask.distributed client (a local cluster of ``workers``, or the one at ``scheduler``), or
    a context that yields None for in-process work.
    """
    from contextlib import nullcontext

    from ramanid.cluster import dask_client

    return nullcontext(None) if workers is None and scheduler is None else dask_client(workers, scheduler)


@main.command("read")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--laser", "laser_nm", type=click.FloatRange(150, 2500), default=None, help="As for predict.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def read_command(paths, laser_nm, fmt):
    """Say what each file is read as, before trusting an answer: format and reader, spectra, axis
    range and unit, laser, coordinates, and anything converted; or why it is refused.
    """
    import json
    from pathlib import Path

    from ramanid.io.files import describe_file

    files = []
    for path in map(Path, paths):
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    reports = [describe_file(path, laser_nm) for path in files]
    if fmt == "json":
        click.echo(json.dumps(reports, indent=1, default=str))
    for report in reports if fmt == "table" else []:
        if "refused" in report:
            click.echo(f"{report['file']}: refused: {report['refused'].removeprefix(report['file'] + ': ')}")
            continue
        low, high = report["range_cm1"]
        line = (
            f"{report['file']}: {report['format']} ({report['reader']}); {report['spectra']} spectra of "
            f"{report['points']} points, {low:g}-{high:g} cm-1 Raman shift (the file's axis: {report['x_unit']})"
        )
        if report.get("laser_nm"):
            line += f"; laser {report['laser_nm']:.6g} nm"
        for key in ("converted", "note"):
            if key in report:
                line += f"; {report[key]}"
        if "coordinates" in report:
            line += "; " + ", ".join(f"{k} {a:g} to {b:g}" for k, (a, b) in report["coordinates"].items())
        click.echo(line)
    if all("refused" in r for r in reports):
        raise SystemExit(DATA_ERROR)


@main.command("calibrate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--standard", type=click.Choice(["silicon", "polystyrene"]), required=True)
@click.option(
    "--degree",
    type=click.IntRange(0, 2),
    default=1,
    show_default=True,
    help="For polystyrene: 0 an offset, 1 a linear, 2 a quadratic correction.",
)
@click.option("--laser", "laser_nm", type=click.FloatRange(150, 2500), default=None, help="As for predict.")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), callback=_output_file, help="The JSON file to write."
)
def calibrate_command(file, standard, degree, laser_nm, out):
    """Measure an instrument's shift error from a standard measured on it (silicon's 520.45 cm-1 band,
    or polystyrene's ASTM E1840 bands); --calibration FILE then corrects every spectrum read.
    """
    from ramanid.io.calibration import fit_correction

    spectra, skipped = _read([file], laser_nm, None)
    if not spectra:
        raise RamanIdError(skipped[0].reason if skipped else f"{file}: holds no spectrum")
    correction = fit_correction(spectra[0], standard, degree)
    correction.save(out)
    bands = ", ".join(f"{m:.2f} (reference {r:g})" for r, m in correction.bands)
    click.echo(f"{standard} bands measured at {bands} cm-1")
    click.echo(f"{correction.describe()}; residual {correction.residual_cm1:.2f} cm-1")
    click.echo(f"written: {out}")


@main.command("demo")
@click.option(
    "--out",
    default="ramanid-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    callback=_output_folder("demo"),
)
@click.option("--epochs", type=click.IntRange(1), default=40, show_default=True)
def demo_command(out, epochs):
    """Offline demo on synthetic spectra: build, cross-validate, train, predict, explain, embed."""
    from ramanid.demo import run_demo

    run_demo(out, epochs=epochs, log=click.echo)


if __name__ == "__main__":  # pragma: no cover
    main()
