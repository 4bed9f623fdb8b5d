"""Editing a saved model's reference library: ``ramanid library add``."""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

from ramanid.bundle.loading import Bundle, load_bundle, save_bundle
from ramanid.errors import RamanIdError
from ramanid.io.rruff import Skipped
from ramanid.search import References
from ramanid.spectra import Spectrum


def add_spectra(bundle: Bundle, spectra: list[Spectrum], mineral: str | None = None, log=print):
    """``(bundle, added, skipped)``: ``spectra`` prepared as the model's inputs and added to its
    library, named ``mineral`` or each file's own mineral name; the reloaded bundle, how many
    were added, and the spectra that could not be. The network is not retrained.
    """
    if not bundle.estimator.answers_from_references:
        raise RamanIdError(
            f"{bundle.path}: a {bundle.info.estimator} answers with the classes it was trained on, so a "
            "reference added to it could never be an answer: add references to a 'ramanid library build' model"
        )
    X, kept, skipped, _ = bundle.prepare(spectra)
    names = [reference_name(mineral or s.meta.get("mineral"), s.source) for s in kept]
    if not len(X):
        raise RamanIdError("no spectrum could be added" + "".join(f"; {s.reason}" for s in skipped[:3]))
    meta = pd.DataFrame([{k: str(s.meta.get(k, "")) for k in ("rruff_id", "file", "chemistry")} for s in kept])
    meta["label"] = names
    return add_references(bundle, X, meta, log), len(X), skipped


def add_references(bundle: Bundle, X: np.ndarray, meta: pd.DataFrame, log=print) -> Bundle:
    """Add reference spectra (already on the bundle's grid and preprocessed) to a saved model's
    library; names that differ from a known one only in case or accents are merged into it, with
    a warning. Returns the reloaded bundle.
    """
    known = {plain_name(name): name for name in np.unique(bundle.labels)}
    names = []
    for name in meta["label"].astype(str):
        same = known.get(plain_name(name), name)
        if same != name:
            log(f"warning: {name!r} is merged with the library's {same!r}")
        known.setdefault(plain_name(name), name)
        names.append(same)
    meta = meta.assign(label=names, mineral=names)
    references = References(
        np.vstack([bundle.library, np.asarray(X, dtype=np.float32)]),
        pd.concat([bundle.library_meta, meta.reindex(columns=bundle.library_meta.columns)], ignore_index=True).fillna(
            ""
        ),
    )
    data = bundle.info.data
    header = {**bundle.header, "data": {**data, "added_references": int(data.get("added_references", 0) + len(X))}}
    if hasattr(bundle.estimator, "add"):  # a library identifier: its stored embeddings grow with it
        bundle.estimator.add(np.asarray(X, dtype=np.float32), np.asarray(names))
    save_bundle(bundle.path, bundle.estimator, header, references)
    return load_bundle(bundle.path)


#: the longest reference name taken
MAX_NAME = 200


def reference_name(name, source: str) -> str:
    """``name`` as a reference's name: without surrounding spaces or zero-width characters, or a
    RamanIdError (naming ``source``) for a name that is empty, too long or holds control characters.
    """
    cleaned = "".join(c for c in str(name or "") if unicodedata.category(c) != "Cf").strip()
    if not cleaned:
        raise RamanIdError(f"{source}: no mineral name in the file: give --mineral NAME")
    if any(unicodedata.category(c) == "Cc" for c in cleaned):
        raise RamanIdError(f"{source}: the mineral name {cleaned[:60]!r} holds control characters: give --mineral NAME")
    if len(cleaned) > MAX_NAME:
        raise RamanIdError(f"{source}: the mineral name has {len(cleaned)} characters; at most {MAX_NAME} are taken")
    return cleaned


def plain_name(name: str) -> str:
    """A mineral name without case, accents or zero-width characters, for matching
    ``Rhodochrosite`` with ``rhodochrosite``.
    """
    decomposed = unicodedata.normalize("NFKD", name.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf").casefold()


__all__ = ["Skipped", "add_references", "add_spectra", "plain_name", "reference_name"]
