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


def machine() -> str:
    import numpy

    return (f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {numpy.__version__}, {time.strftime('%Y-%m-%d')}")


@contextmanager
def timer(results: dict, key: str):
    start = time.perf_counter()
    yield
    results[key] = time.perf_counter() - start
