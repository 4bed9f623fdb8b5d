"""The mixture protocol (issue 25): synthetic mixtures of held-out specimens' spectra, named by
``predict --mixture`` and by two baselines on the same spectra.

    python benchmarks/bench_mixtures.py --model DIR [--condition "microscope, good"] [--log mixtures.json]
    python benchmarks/bench_mixtures.py --speed identifier  # ms per spectrum against its references

``--model`` is an identifier trained on the references of the degradation protocol's split
(``bench_degradation.py --save DIR``, same ``--fold`` and ``--seed``), so that no mixture shares a
specimen with the references. The stopping rule is the model's own, or where its folder has none
(or one chosen for an older method), chosen on its validation specimens
(``ramanid.deploy.choose_stopping_rule``), never on these mixtures. Mixtures: pairs of different minerals drawn at random and from one chemical class
(carbonates, sulfates, phosphates, silicates, ...), at 50/50, 30/70 and 10/90; triples at equal
shares and 20/30/50; single spectra (for spurious components). Each is degraded by
``--condition``. Baselines: the plain answer's top k (k the true number of minerals, which the
baseline is given), and residual subtraction (identify, subtract the least-squares-scaled best
reference, identify the residual; k times). "Spurious" is more minerals named than there are
(for single spectra, the issue's spurious second component); "where each part alone is named
right" restricts to mixtures whose parts the plain answer names right one at a time (degraded
alike), as the issue's own check did.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _common import RRUFF_ZIP, cpu_flags, machine

from ramanid.bundle import load_bundle
from ramanid.chemistry import parse_elements
from ramanid.cli import IDENTIFIER_PREPROCESS
from ramanid.datasets.rruff import build_rruff
from ramanid.deploy import choose_stopping_rule
from ramanid.errors import ChemistryError
from ramanid.evaluation.degradation import COMBINATIONS, Condition, degrade
from ramanid.evaluation.mixtures import make_mix, residual_subtraction, score_sets
from ramanid.evaluation.splits import specimen_holdout
from ramanid.io.rruff import read_rruff
from ramanid.mixture import METHOD
from ramanid.predict import predict_prepared

FRACTIONS = {1: [(1.0,)], 2: [(0.5, 0.5), (0.3, 0.7), (0.1, 0.9)], 3: [(1 / 3, 1 / 3, 1 / 3), (0.2, 0.3, 0.5)]}
KINDS = {"singles": (1, 200), "random pairs": (2, 240), "same-class pairs": (2, 150), "triples": (3, 150)}


def chemical_class(formula: str) -> str:
    """A coarse class from RRUFF's formula markup: the anion group that names a mineral class."""
    for marker, name in (
        ("CO_3_", "carbonate"),
        ("SO_4_", "sulfate"),
        ("PO_4_", "phosphate"),
        ("AsO_4_", "arsenate"),
        ("VO_4_", "vanadate"),
        ("MoO_4_", "molybdate"),
        ("WO_4_", "tungstate"),
        ("BO_3_", "borate"),
    ):
        if marker in formula:
            return name
    try:
        elements = parse_elements(formula)
    except ChemistryError:
        return "other"
    if "Si" in elements:
        return "silicate"
    return "oxide or hydroxide" if "O" in elements else "other"


def draw(spectra: list, count: int, n: int, rng, same_class: bool) -> list[list]:
    by_mineral = {}
    for s in spectra:
        by_mineral.setdefault(s.meta["mineral"], []).append(s)
    minerals = sorted(by_mineral)
    classes = {m: chemical_class(by_mineral[m][0].meta.get("chemistry", "")) for m in minerals}
    draws = []
    while len(draws) < n:
        first = rng.choice(minerals)
        pool = [m for m in minerals if m != first and (not same_class or classes[m] == classes[first])]
        if len(pool) < count - 1:
            continue
        chosen = [first, *rng.choice(pool, count - 1, replace=False)]
        draws.append([by_mineral[m][rng.integers(len(by_mineral[m]))] for m in chosen])
    return draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--condition", default="microscope, good", help="A combination of the degradation protocol, or 'clean'."
    )
    parser.add_argument("--max-components", type=int, default=3)
    parser.add_argument(
        "--choose", action="store_true", help="Choose the stopping rule again, whatever the folder says."
    )
    parser.add_argument("--speed", type=Path, default=None, help="Time --mixture against plain predict on this model.")
    parser.add_argument("--log", type=Path, default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}")
    if args.speed:
        speed(args.speed)
        return
    bundle = load_bundle(args.model)
    built = build_rruff(
        RRUFF_ZIP, wavelengths=None, kind="all", min_per_mineral=1, preprocess=IDENTIFIER_PREPROCESS
    ).spectra
    refs, held, _ = specimen_holdout(built.meta, args.fold, seed=args.seed)
    assert len(bundle.library) == len(refs), "--model was built on another split"
    rule = bundle.info.mixture_min_gain
    if rule is None or args.choose:
        validation = np.asarray(bundle.info.validation["index"])
        rule, figures = choose_stopping_rule(bundle.estimator, built.subset(refs), validation, seed=args.seed)
        print(f"stopping rule chosen on validation mixtures: {rule} (each rule's figures: {json.dumps(figures)})")
        bundle.header["mixture"] = {"method": METHOD, "min_gain": rule, "validation": figures}
        bundle.info = type(bundle.info).from_header(bundle.header)
    held_files = set(built.meta["file"].iloc[held])
    spectra, _ = read_rruff(RRUFF_ZIP, lambda m: m.get("kind") == "processed")
    known = set(bundle.labels)
    spectra = [s for s in spectra if s.meta["file"] in held_files and s.meta["mineral"] in known]
    condition = (
        Condition("clean")
        if args.condition == "clean"
        else Condition(args.condition, tuple(COMBINATIONS[args.condition].items()))
    )
    rng = np.random.default_rng(args.seed)
    rows, timing = [], {"mixture": 0.0, "plain": 0.0, "n": 0}
    for kind, (count, n) in KINDS.items():
        results = {"ramanid --mixture": [], "top-k of the plain answer": [], "residual subtraction": []}
        for k, parts in enumerate(draw(spectra, count, n, rng, same_class=kind == "same-class pairs")):
            weights = FRACTIONS[count][k % len(FRACTIONS[count])]
            mix = make_mix(parts, weights, f"{kind} {k}")
            measured = degrade(mix.spectrum, condition, np.random.default_rng([args.seed, k, count]))
            X, kept, _, quality = bundle.prepare([measured])
            if not kept:
                continue
            t = time.perf_counter()
            (plain,) = predict_prepared(bundle, X, ["q"], top=5, quality=quality)
            timing["plain"] += time.perf_counter() - t
            t = time.perf_counter()
            (mixed,) = predict_prepared(bundle, X, ["q"], top=5, quality=quality, mixture=args.max_components)
            timing["mixture"] += time.perf_counter() - t
            timing["n"] += 1
            close = min(weights) >= 0.3 if count == 2 else True
            extra = {"close": close, "parts_right": parts_named_alone(bundle, parts, condition, [args.seed, k, count])}
            results["ramanid --mixture"].append(
                {
                    **score_sets(
                        mix, [c["mineral"] for c in mixed.components], [c["fraction"] for c in mixed.components]
                    ),
                    **extra,
                }
            )
            results["top-k of the plain answer"].append(
                {**score_sets(mix, [name for name, _ in plain.top[:count]]), **extra}
            )
            results["residual subtraction"].append(
                {**score_sets(mix, residual_subtraction(bundle.estimator, X[0], count)), **extra}
            )
        for method, found in results.items():
            row = {"kind": kind, "method": method, "n": len(found)}
            for key in ("exact", "recall", "precision", "extra", "spurious", "share_mae"):
                values = [f[key] for f in found if key in f]
                row[key] = float(np.mean(values)) if values else None
            close = [f for f in found if f["close"]]
            row["all named (30/70 or closer)" if count == 2 else "all named"] = (
                float(np.mean([f["recall"] == 1 for f in close])) if close else None
            )
            alone = [f for f in close if f["parts_right"]]
            row["all named, where each part alone is named right"] = (
                float(np.mean([f["recall"] == 1 for f in alone])) if alone else None
            )
            row["n parts right"] = len(alone)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"ms per spectrum: mixture {1000 * timing['mixture'] / timing['n']:.1f}, plain {1000 * timing['plain'] / timing['n']:.1f} (after preparation, {len(bundle.library)} references)"
    )
    if args.log:
        args.log.write_text(
            json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rule": rule, "rows": rows}, indent=1)
        )


def parts_named_alone(bundle, parts: list, condition: Condition, seed: list[int]) -> bool:
    """Whether the plain answer names each part of a mixture right on its own (degraded alike):
    the mixtures the issue's own check was made on.
    """
    measured = [degrade(p, condition, np.random.default_rng([*seed, i])) for i, p in enumerate(parts)]
    X, kept, _, quality = bundle.prepare(measured)
    if len(kept) < len(parts):
        return False
    answers = predict_prepared(bundle, X, [str(i) for i in kept], top=1, quality=quality)
    return all(a.top[0][0] == p.meta["mineral"] for a, p in zip(answers, parts, strict=True))


def speed(model: Path) -> None:
    """``predict`` with and without ``--mixture`` on the same 100 prepared spectra, in one run."""
    bundle = load_bundle(model)
    X = bundle.library[:: max(1, len(bundle.library) // 100)][:100]
    sources = [f"r{i}" for i in range(len(X))]
    for label, mixture in (("plain", None), ("mixture", 3), ("plain", None), ("mixture", 3)):
        start = time.perf_counter()
        predict_prepared(bundle, X, sources, mixture=mixture)
        print(
            f"{label}: {1000 * (time.perf_counter() - start) / len(X):.1f} ms per spectrum ({len(bundle.library)} references)"
        )


if __name__ == "__main__":
    main()
