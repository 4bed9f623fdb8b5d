"""Bruker OPUS files, read by brukeropus (https://pypi.org/project/brukeropus/).

An OPUS file holds several data blocks (absorbance, single-channel sample and reference spectra,
interferograms, ...). Its Raman block (FT-Raman instruments) is read on its Raman shift axis;
a file without one is an infrared measurement and is refused as such.
"""

from __future__ import annotations

import numpy as np

from ramanid.errors import SpectrumFormatError
from ramanid.io.axis import SHIFT, ascending, check_raman_range
from ramanid.io.block import Block, package_version

NAME = "Bruker OPUS"
#: the first bytes of every OPUS file
MAGIC = b"\x0a\x0a\xfe\xfe"


def read_opus(path: str, laser_nm: float | None = None) -> list[Block]:
    """The Raman spectrum of an OPUS file, or a refusal naming what the file holds."""
    from brukeropus import read_opus as read

    try:
        opus = read(path)
        keys = list(opus.data_keys)
    except Exception as exc:  # noqa: BLE001 - a damaged file fails inside brukeropus in many ways
        raise SpectrumFormatError(
            path, f"{NAME}, but brukeropus could not read it ({type(exc).__name__}: {exc})"
        ) from exc
    raman = [k for k in keys if k.startswith("ra")]
    if not raman:
        held = ", ".join(getattr(getattr(opus, k), "label", k) for k in keys) or "no spectra"
        span = ""
        if keys:
            x = np.asarray(getattr(opus, keys[0]).x, dtype=np.float64)
            span = f", {x.min():.0f}-{x.max():.0f} cm-1"
        raise SpectrumFormatError(path, f"{NAME} infrared file ({held}{span}): ramanid identifies Raman spectra")
    block = getattr(opus, raman[0])
    x, y = np.asarray(block.x, dtype=np.float64), np.asarray(block.y, dtype=np.float64).reshape(-1, len(block.x))
    check_raman_range(x, path)
    order = ascending(x, path)
    laser = getattr(opus.params, "lwn", None) if hasattr(opus, "params") else None
    columns = {"file": [path] if len(y) == 1 else [f"{path}[{i}]" for i in range(len(y))]}
    facts = {"format": NAME, "reader": f"brukeropus {package_version('brukeropus')}", "x_unit": SHIFT}
    facts["laser_nm"] = 1e7 / float(laser) if laser else None
    return [Block(x[order], y[:, order], columns, facts)]
