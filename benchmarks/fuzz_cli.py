"""Hostile and odd inputs through the command line (issue 28): each case runs ``ramanid`` in its
own process with a time limit, and is counted as a clear error, handled, a traceback, a hang,
silently wrong (an answer where none is right, or the wrong one) or data lost (a file of the
user's gone or changed).

    python benchmarks/fuzz_cli.py [--timeout 120] [--only WORD]

The cases are the findings of the issue's fuzz run, rebuilt from its description (its own 468
inputs were not kept), and their neighbours. The server's cases are in
``tests/test_hardening_second.py`` (uploads, file names, query strings, timeouts, Host header).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(__file__))
from _common import SHARED, cpu_flags, machine

from ramanid.spectra import SpectraSet

BUNDLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "bundles_v2"
SILICON = SHARED / "formats" / "labspec" / "532nm-191216-Si_200mu.txt"


def toy(n=60, points=128, names=("m0", "m1", "m2")) -> SpectraSet:
    rng = np.random.default_rng(0)
    y = np.arange(n) % len(names)
    x = np.linspace(100, 1400, points)
    bands = np.array([np.exp(-((x - 300 - 300 * k) ** 2) / 800) for k in range(len(names))])
    return SpectraSet(x, bands[y] + 0.05 * rng.random((n, points)), pd.DataFrame({"mineral": [names[v] for v in y]}))


def text(y, x=None) -> str:
    x = np.linspace(100, 1400, len(y)) if x is None else x
    return "".join(f"{a:.2f}, {b:.6g}\n" for a, b in zip(x, y, strict=True))


def header_edit(folder: Path, **fields) -> Path:
    header = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps({**header, **fields}))
    return folder


class Cases:
    """The cases, each built in its own folder under ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.data = toy().save(root / "toy.npz")
        self.model = root / "model"
        run(["train", "--data", str(self.data), "--model", "mlp", "--epochs", "1", "--out", str(self.model)], 300)
        self.items = []

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        return path

    def identifier(self, name: str) -> Path:
        return Path(shutil.copytree(BUNDLES / "identifier", self.root / name))

    def file(self, name: str, content) -> Path:
        path = self.root / name
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
        return path

    def add(self, name, argv, expect="error", keep=(), says=None, check=None):
        """``expect``: "error" (a clear one-line refusal), "ok", or "either"; ``keep``: files of the
        user's that must be unchanged afterwards; ``says``: text the output must hold; ``check``: a
        function that says whether what was written is right.
        """
        kept = {Path(k): _digest(Path(k)) for k in keep}
        self.items.append((name, [str(a) for a in argv], expect, kept, says, check))


def _digest(path: Path):
    if path.is_dir():
        return sorted((p.name, p.stat().st_size) for p in path.iterdir())
    return path.read_bytes() if path.exists() else None


def build(c: Cases) -> None:
    model, data = c.model, c.data
    flat = {k: c.file(f"{k}.txt", text(v)) for k, v in {
        "zeros": np.zeros(300), "constant": np.full(300, 5.0), "underflow": np.full(300, 1e-300),
        "line": np.linspace(0, 3, 300),
    }.items()}  # fmt: skip
    for k, path in flat.items():
        c.add(f"predict a {k} spectrum", ["predict", c.identifier(f"id_{k}"), path], says="holds no signal")
        c.add(f"library add a {k} spectrum", ["library", "add", c.identifier(f"ida_{k}"), path, "--mineral", "X"])
    euro = c.file("euro.csv", "".join(f"{100 + i},{i % 7}5;{(i % 5) / 4:.4f}\n".replace(".", ",") for i in range(300)))
    c.add("European decimals are one shift, one intensity", ["read", euro], "ok", says="100.05-399.55")
    c.add(
        "index,shift,intensity",
        [
            "read",
            c.file(
                "idx.csv",
                "index,shift,intensity\n" + "".join(f"{i},{150 + 2 * i},{np.sin(i / 5) + 2:.3f}\n" for i in range(300)),
            ),
        ],
        "ok",
        says="150-748",
    )
    c.add("UTF-16 text", ["read", c.file("u16.txt", b"\xff\xfe" + text(np.sin(np.arange(300)) + 2).encode("utf-16-le"))],
          "ok", says="300 points")  # fmt: skip
    labels = c.file(
        "labels.csv",
        "label,"
        + ",".join(f"{v:g}" for v in np.linspace(100, 1400, 8))
        + "\n"
        + "".join(
            f"{lab}," + ",".join(["1.5"] * 7 + [str(i)]) + "\n"
            for i, lab in enumerate(["1", "1.0", "01", "None", "NaN"] * 3)
        ),
    )

    def five_classes():
        return SpectraSet.load(c.root / "labels.npz").meta["label"].nunique() == 5

    c.add("labels 1, 1.0, 01, None, NaN are five classes",
          ["build", "table", "--source", labels, "--out", c.root / "labels.npz"], "ok", check=five_classes)  # fmt: skip
    c.add(
        "not gzip .csv.gz",
        ["build", "table", "--source", c.file("fake.csv.gz", "a,b\n1,2\n"), "--out", c.root / "g.npz"],
    )
    c.add("damaged gzip", ["build", "table", "--source", c.file("bad.csv.gz", gzip.compress(b"a,b\n1,2\n")[:15]),
                           "--out", c.root / "g2.npz"])  # fmt: skip
    sparse = c.file("sparse.txt", text(np.sin(np.arange(300))))
    os.truncate(sparse, 2**30)
    c.add("a 1 GiB sparse text file", ["read", sparse], "either", says="refused")
    sparse_zero = c.root / "zero.txt"
    with open(sparse_zero, "wb") as fh:
        fh.truncate(2**30)
    c.add("a 1 GiB file of zeros", ["predict", model, sparse_zero], says="binary")
    # names
    for label, name in [("blank", "   "), ("zero-width", "Cal\u200bcite"), ("ANSI and newline", "Evil\x1b[31m\nred"),
                        ("300 characters", "a" * 300)]:  # fmt: skip
        expect = "ok" if label == "zero-width" else "error"
        c.add(f"library add, name {label}", ["library", "add", c.identifier(f"n_{len(c.items)}"), SILICON, "--mineral", name],
              expect)  # fmt: skip
    c.add("library add to a classifier", ["library", "add", model, SILICON, "--mineral", "Si"])
    c.add("a file name with an ANSI escape", ["predict", model, c.file("evil\x1b[2J.txt", "nothing\n")], says="\\x1b")
    # --out rules: nothing of the user's is lost
    for command in (
        ["train", "--data", data, "--model", "mlp", "--epochs", "1"],
        ["cv", "--data", data, "--model", "lr"],
    ):
        mine = c.folder(f"mine_{command[0]}")
        (mine / "report.md").write_text("my report")
        shutil.copy(data, mine / "toy.npz")
        c.add(f"{command[0]} --out a folder of the user's", [*command, "--out", mine], keep=[mine, mine / "report.md"])
    code = c.folder("code")
    for name in ("setup.py", "README.md", "module.py"):
        (code / name).write_text("# code\n")
    c.add("cv --out a source folder", ["cv", "--data", data, "--model", "lr", "--out", code], keep=[code])
    c.add("train --out a folder holding its own --data", ["train", "--data", c.root / "mine_train" / "toy.npz", "--model",
          "mlp", "--out", c.root / "mine_train"], keep=[c.root / "mine_train"])  # fmt: skip
    c.add("demo --out a folder of the user's", ["demo", "--out", c.root / "mine_cv"], keep=[c.root / "mine_cv"])
    np.save(c.root / "cube.npy", toy(6).intensities.reshape(2, 3, -1))
    np.save(c.root / "axis.npy", toy(6).shifts)
    mine_map = c.folder("mine_map")
    (mine_map / "data.csv").write_text("1,2\n")
    c.add("map --out a folder of the user's", ["map", model, c.root / "cube.npy", "--axis", c.root / "axis.npy",
          "--out", mine_map], keep=[mine_map])  # fmt: skip
    c.add("build rruff --preprocess savgol(window_length=99999999)", ["build", "rruff", "--source", SHARED / "rruff" /
          "excellent_unoriented.zip", "--preprocess", "savgol(window_length=99999999)", "--out", c.root / "r.npz"])  # fmt: skip
    c.add("build rruff --preprocess arpls(lam=-5)", ["build", "rruff", "--source", SHARED / "rruff" /
          "excellent_unoriented.zip", "--preprocess", "arpls(lam=-5)", "--out", c.root / "r.npz"])  # fmt: skip
    replaced = Path(shutil.copytree(model, c.root / "replaced"))
    c.add("train --out an existing model folder", ["train", "--data", data, "--model", "mlp", "--epochs", "1",
          "--out", replaced], "ok")  # fmt: skip
    # step settings, widths and training options
    for spec in ("savgol(window_length=99999999)", "despike(window=99999999)", "arpls(lam=-5)", "opening(width=1e300)",
                 "asls(max_iter=1000000000)", "snip(max_half_window=100000)", "savgol(polyorder=99999)"):  # fmt: skip
        tampered = header_edit(Path(shutil.copytree(model, c.root / f"pre_{len(c.items)}")), preprocess=spec)
        c.add(f"bundle.json preprocess {spec}", ["predict", tampered, SILICON])
    for option, value in [("--hidden", "100000000"), ("--lr", "nan"), ("--lr", "-1"), ("--wd", "inf"),
                          ("--device", "cuda"), ("--device", "evil"), ("--epochs", "0")]:  # fmt: skip
        c.add(
            f"train {option} {value}", ["train", "--data", data, "--model", "mlp", option, value, "--out", c.root / "o"]
        )
    one = toy(9, 64, ("only",)).save(c.root / "one.npz")
    two = toy(2, 64, ("a", "b")).save(c.root / "two.npz")
    c.add("cv on one class", ["cv", "--data", one, "--model", "lr", "--out", c.root / "cv1"])
    c.add("train on one class", ["train", "--data", one, "--model", "mlp", "--out", c.root / "t1"])
    c.add("cv on two spectra", ["cv", "--data", two, "--model", "lr", "--out", c.root / "cv2"])
    c.add("train on two spectra", ["train", "--data", two, "--model", "mlp", "--out", c.root / "t2"])
    c.add("cv --backend dask, unreachable scheduler", ["cv", "--data", data, "--model", "lr", "--backend", "dask",
          "--scheduler", "tcp://127.0.0.1:1", "--out", c.root / "cvd"])  # fmt: skip
    long_names = toy(63, 128, ("A" * 10_000, "B\n" * 5_000, "C" * 10_000 + "$\\frac$")).save(c.root / "long.npz")
    c.add(
        "cv with three 10 KB class names", ["cv", "--data", long_names, "--model", "lr", "--out", c.root / "cvl"], "ok"
    )
    # damaged model folders
    damaged = {
        "version is the string 2": {"version": "2"},
        "data is not an object": {"data": 5},
        "task kind elements on a classifier": {"task": {"kind": "elements"}},
        "no identifier block": {"identifier": None},
    }
    for label, fields in damaged.items():
        c.add(f"model folder: {label}", ["predict", header_edit(Path(shutil.copytree(BUNDLES / "identifier",
              c.root / f"d_{len(c.items)}")), **fields), SILICON])  # fmt: skip
    deep = Path(shutil.copytree(model, c.root / "deep"))
    (deep / "bundle.json").write_text('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}")
    c.add("bundle.json nested 200,000 deep", ["predict", deep, SILICON])
    nan_library = Path(shutil.copytree(BUNDLES / "identifier", c.root / "nanlib"))
    with np.load(nan_library / "library.npz") as arrays:
        contents = dict(arrays)
    key = next(k for k, v in contents.items() if v.dtype.kind == "f" and v.ndim == 2)
    contents[key] = np.full_like(contents[key], np.nan)
    np.savez(nan_library / "library.npz", **contents)
    c.add("model folder with an all-NaN library", ["predict", nan_library, SILICON])
    c.add("explain on a file of several spectra", ["explain", model, SHARED / "formats" / "renishaw" /
          "interrupted_acquisition.wdf", "--out", c.root / "why.png"], "either", says="explaining the first")  # fmt: skip
    c.add("serve on a port in use", ["serve", model, "--port", str(_port_in_use(c))], says="cannot serve on")


def _port_in_use(c: Cases) -> int:
    import socket

    c.holder = socket.socket()
    c.holder.bind(("127.0.0.1", 0))
    c.holder.listen()
    return c.holder.getsockname()[1]


def run(argv, timeout: float):
    command = [sys.executable, "-c", "from ramanid.cli import main; main()", *map(str, argv)]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, errors="replace")
    except subprocess.TimeoutExpired:
        return None, "", time.perf_counter() - start
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def verdict(code, output, expect, kept, says, check) -> str:
    if code is None:
        return "hang"
    if "Traceback" in output or code not in (0, 1, 2, 130):
        return "traceback"
    if any(_digest(path) != before for path, before in kept.items()):
        return "data lost"
    if (says is not None and says not in output) or (check is not None and code == 0 and not check()):
        return "silently wrong"
    if expect == "error" and code == 0:
        return "silently wrong"
    if expect == "ok" and code != 0:
        return "wrongly refused"
    return "clear error" if code else "handled"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--only", default=None, help="Run only the cases whose name holds this word.")
    args = parser.parse_args()
    print(f"# {machine()}; {cpu_flags()}")
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="ramanid-fuzz-") as root:
        cases = Cases(Path(root))
        build(cases)
        for name, argv, expect, kept, says, check in cases.items:
            if args.only and args.only not in name:
                continue
            code, output, seconds = run(argv, args.timeout)
            result = verdict(code, output, expect, kept, says, check)
            counts[result] = counts.get(result, 0) + 1
            last = (output.strip().splitlines() or [""])[-1][:150]
            print(f"{result:15s} {seconds:5.1f} s  {name}: {last}")
    print("total:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), f"of {sum(counts.values())} cases")


if __name__ == "__main__":
    main()
