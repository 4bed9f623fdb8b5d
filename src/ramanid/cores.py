"""The cores this process may use: what a map's chunks, a cross-validation's folds and a zip's
readers are spread over.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one: a container
    or ``taskset`` may allow fewer than the machine has).
    """
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
