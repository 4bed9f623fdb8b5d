"""The model folder's format: which files, written whole, checked by their SHA-256.

A folder holds ``bundle.json`` (the header: what the model is, its state and calibration),
``weights.safetensors`` (the networks' weights and a library identifier's reference embeddings,
or a classical model's skops bytes) and
``library.npz`` (the reference spectra and their metadata). Nothing is pickled: weights go
through safetensors, arrays through ``np.load(allow_pickle=False)``, a classical model through
skops' secure format with a trusted-types check (:mod:`ramanid.training.classical`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ramanid.atomic import atomic_folder
from ramanid.errors import RamanIdError
from ramanid.search import References

FORMAT = "ramanid.bundle"
#: 2: the folder is written whole, and bundle.json holds the SHA-256 of the other files;
#: 3: the estimator named is the whole model (a library identifier, a blend), and the
#: preprocessing is a list of steps
VERSION = 3
#: the versions this ramanid reads (older ones are upgraded as they are read)
READABLE = (2, 3)
HEADER, WEIGHTS, LIBRARY = "bundle.json", "weights.safetensors", "library.npz"
LIBRARY_COLUMNS = ("mineral", "rruff_id", "file", "label", "chemistry", "measured_chemistry")


class BundleError(RamanIdError):
    """A model folder that is missing, damaged or made by an incompatible ramanid."""


def write_folder(folder: str | Path, header: dict, tensors: dict, references: References) -> Path:
    """Write a model folder whole or not at all (:func:`~ramanid.atomic.atomic_folder`);
    ``bundle.json`` gets the format, the version and the SHA-256 of the other two files.
    """
    from ramanid import __version__

    with atomic_folder(folder) as tmp:
        save_file(tensors, str(tmp / WEIGHTS))
        columns = [c for c in LIBRARY_COLUMNS if c in references.meta]
        with open(tmp / LIBRARY, "wb") as fh:
            np.savez(  # not compressed: spectra hardly compress, and every load would inflate them
                fh,
                intensities=references.intensities,
                meta=np.array(references.meta[columns].astype(str).to_json(orient="split")),
            )
        content = {name: _sha256(tmp / name) for name in (WEIGHTS, LIBRARY)}
        stamp = {"format": FORMAT, "version": VERSION, "ramanid_version": __version__, "content": content}
        (tmp / HEADER).write_text(json.dumps({**header, **stamp}, indent=1))
        for name in (WEIGHTS, LIBRARY, HEADER):
            os.chmod(tmp / name, 0o644)
    return Path(folder)


#: a header larger than this is not one ramanid wrote (it holds names and settings; arrays are in the other files)
MAX_HEADER_BYTES = 64 * 2**20


def read_header(folder: Path) -> dict:
    """``bundle.json`` of a model folder whose three files are there, or a :class:`BundleError`."""
    if not folder.is_dir():
        raise BundleError(f"{folder}: no such model folder: expected one written by 'ramanid train'")
    for name in (HEADER, WEIGHTS, LIBRARY):
        if not (folder / name).is_file():
            raise BundleError(f"{folder}: {name} is missing: the model folder is incomplete")
    size = (folder / HEADER).stat().st_size
    if size > MAX_HEADER_BYTES:
        raise BundleError(f"{folder / HEADER}: {size:,} bytes, more than any model's header ({MAX_HEADER_BYTES:,})")
    try:
        header = json.loads((folder / HEADER).read_text())
    except RecursionError as exc:
        raise BundleError(f"{folder / HEADER}: nested deeper than any model's header: not one ramanid wrote") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{folder / HEADER}: not valid JSON ({str(exc)[:200]})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        kind = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise BundleError(f"{folder / HEADER}: not a ramanid model (format={kind!r})")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleError(f"{folder / HEADER}: field 'version' is {json.dumps(version)[:20]}: expected a whole number")
    if version not in READABLE:
        raise BundleError(
            f"{folder}: bundle version {version} is not one this ramanid reads (it reads versions "
            f"{', '.join(map(str, READABLE))}; the folder was written by ramanid "
            f"{str(header.get('ramanid_version'))[:20]}): train the model again, or use the ramanid that wrote it"
        )
    return header


def read_content(folder: Path, header: dict) -> tuple[dict, References]:
    """The weights and the library of a folder whose header is checked: its files must match
    their SHA-256 in the header, the weights be finite, the library fit ``n_features``.
    """
    for name, digest in header["content"].items():
        if _sha256(folder / name) != digest:
            raise BundleError(f"{folder / name}: does not match bundle.json (a damaged or mixed model folder)")
    try:
        tensors = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{folder / WEIGHTS}: damaged weights ({exc})") from exc
    broken = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if broken is not None:
        raise BundleError(f"{folder / WEIGHTS}: {broken} holds NaN or infinite values")
    try:
        with np.load(folder / LIBRARY, allow_pickle=False) as data:
            library = data["intensities"]
            meta = pd.read_json(io.StringIO(str(data["meta"])), orient="split", dtype=str)
    except (OSError, KeyError, ValueError) as exc:
        raise BundleError(f"{folder / LIBRARY}: damaged reference library ({exc})") from exc
    if library.ndim != 2 or library.shape[1] != header["n_features"] or len(meta) != len(library):
        raise BundleError(
            f"{folder / LIBRARY}: {library.shape} spectra and {len(meta)} rows do not fit {header['n_features']} points"
        )
    if library.dtype.kind != "f" or not np.isfinite(library).all():
        raise BundleError(f"{folder / LIBRARY}: the reference spectra must be finite numbers")
    return tensors, References(library, meta)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()
