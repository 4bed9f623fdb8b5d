"""Helpers shared by the benchmark scripts: where the data is, and a description of the machine."""

from __future__ import annotations

import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RRUFF_ZIP = SHARED / "rruff" / "excellent_unoriented.zip"
COVID_DIR = SHARED / "covid_serum"


def cpu_flags() -> str:
    """The CPU model and the vector flags that decide float32 and bfloat16 speed, and the kernels
    torch uses (``ATEN_CPU_CAPABILITY=avx2`` makes torch use its AVX2 kernels on a newer CPU)."""
    import torch

    try:
        info = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
        info = {key.strip(): value.strip() for key, value in info.items()}
    except OSError:
        info = {}
    model, flags = info.get("model name", platform.processor() or "cpu"), set(info.get("flags", "").split())
    shown = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return f"{model}; flags: {' '.join(shown) or 'unknown'}; torch kernels: {torch.backends.cpu.get_cpu_capability()}"


def machine() -> str:
    import numpy

    return (
        f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, {time.strftime('%Y-%m-%d')}"
    )


@contextmanager
def timer(results: dict, key: str):
    start = time.perf_counter()
    yield
    results[key] = time.perf_counter() - start


def processed_references(count: int, seed: int):
    """``(spectra, rows)``: every RRUFF spectrum on the identifier's grid, and a seeded sample of
    ``count`` processed spectra among the references of fold 0 of the degradation protocol's
    split (no held-out specimen): smooth spectra with their own baseline already removed.
    """
    import numpy as np

    from ramanid.datasets.rruff import build_rruff
    from ramanid.evaluation.splits import specimen_holdout

    built = build_rruff(RRUFF_ZIP, wavelengths=None, kind="all", min_per_mineral=1).spectra
    references, _, _ = specimen_holdout(built.meta, 0, seed=0)
    processed = references[built.meta["kind"].iloc[references].to_numpy() == "processed"]
    return built, np.random.default_rng(seed).choice(processed, min(count, len(processed)), replace=False)


def sampled_references(description: str):
    """``(args, spectra, rows)``: the command line (``--spectra``, ``--seed``) of a benchmark on
    :func:`processed_references`, the machine printed, and that sample.
    """
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--spectra", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}")
    return (args, *processed_references(args.spectra, args.seed))


def held_out_spectra(bundle, fold: int, seed: int) -> list:
    """The processed spectra, as read from their files, of the degradation protocol's held-out
    specimens of fold ``fold`` whose minerals ``bundle`` (an identifier saved on that fold) knows.
    """
    from ramanid.cli import IDENTIFIER_PREPROCESS
    from ramanid.datasets.rruff import build_rruff
    from ramanid.evaluation.splits import specimen_holdout
    from ramanid.io.rruff import read_rruff

    built = build_rruff(
        RRUFF_ZIP, wavelengths=None, kind="all", min_per_mineral=1, preprocess=IDENTIFIER_PREPROCESS
    ).spectra
    refs, held, _ = specimen_holdout(built.meta, fold, seed=seed)
    assert len(bundle.library) == len(refs), "--model was built on another split"
    files = set(built.meta["file"].iloc[held])
    spectra, _ = read_rruff(RRUFF_ZIP, lambda m: m.get("kind") == "processed")
    known = set(bundle.labels)
    return [s for s in spectra if s.meta["file"] in files and s.meta["mineral"] in known]
