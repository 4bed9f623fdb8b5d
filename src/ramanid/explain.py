"""Attributions per Raman shift: integrated gradients (Sundararajan, Taly & Yan 2017, *Axiomatic
attribution for deep networks*, ICML) from a zero spectrum, for one class or element.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ramanid.errors import ModelError, RamanIdError


def integrated_gradients(
    model: torch.nn.Module, x: np.ndarray, output: int, steps: int = 64, baseline: np.ndarray | None = None
) -> np.ndarray:
    """Attribution of ``model(x)[output]`` to each point of one spectrum ``x``.

    The attributions sum to ``f(x) - f(baseline)`` up to the Riemann error of ``steps``.
    BatchNorm and dropout run in eval mode, so the path points do not interact.
    """
    model.eval()
    device = next(model.parameters()).device
    x_t = torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)
    base = torch.zeros_like(x_t) if baseline is None else torch.as_tensor(baseline, dtype=torch.float32, device=device)
    alphas = (torch.arange(steps, device=device, dtype=torch.float32) + 0.5) / steps
    path = (base + alphas[:, None] * (x_t - base)).requires_grad_(True)
    model(path)[:, output].sum().backward()
    return ((x_t - base) * path.grad.mean(dim=0)).detach().cpu().numpy()


@dataclass
class Explanation:
    """What an attribution figure shows: the preprocessed spectrum, its attribution per shift for
    ``target``, and the best-matching reference; for a network blended with the formula vote,
    ``votes``: the references whose formulas the vote read, weightiest first (mineral, RRUFF id,
    formula, similarity, share of the vote, and whether the formula holds the target element).
    """

    source: str
    target: str
    label: str
    shifts: np.ndarray
    spectrum: np.ndarray
    attribution: np.ndarray
    reference: np.ndarray
    reference_label: str
    votes: list[dict] = field(default_factory=list)

    def vote_lines(self, most: int = 10) -> list[str]:
        """The formula vote's ``most`` weightiest references, one line each, for a blend (none
        otherwise), and a line for the rest.
        """
        lines = [
            f"{v['mineral']} {v['rruff_id']} ({v['chemistry']}) similarity {v['similarity']:.3f}, "
            f"weight {v['weight']:.0%}, {'holds' if v['holds_target'] else 'lacks'} {self.target}"
            for v in self.votes[:most]
        ]
        rest = self.votes[most:]
        if rest:
            lines.append(f"... and {len(rest)} more, {sum(v['weight'] for v in rest):.0%} of the vote")
        return lines


def explain(bundle, spectrum, target: str | None = None, log=None) -> Explanation:
    """Integrated-gradients attribution of one spectrum for the answer ``predict`` gives (or the
    named class or element), beside the reference the answer's nearest-reference list starts
    with; ``log`` is told when that answer is doubtful (flagged unknown, or the spectrum too poor),
    and when the spectrum was compared moved back by a calibration offset or read from past an edge
    filter's cut.
    """
    from ramanid.predict import predict_prepared

    X, kept, skipped, quality = bundle.prepare([spectrum])
    if not kept:
        raise RamanIdError(skipped[0].reason)
    if quality[0].filter_edge_cm1 is not None and log is not None:
        log(
            f"read from {quality[0].filter_edge_cm1:.0f} cm-1: below it the spectrum steps up from dark at an edge "
            "filter's cut under a background, which no baseline follows"
        )
    reference = None
    if target is None and bundle.estimator.kind != "elements" and not bundle.estimator.transductive:
        (answer,) = predict_prepared(bundle, X[:1], [spectrum.source], top=1, quality=quality)
        target, reference = answer.top[0][0], answer.nearest[0]["library_index"]
        doubts = (["it is flagged unknown"] if answer.unknown else []) + (
            [f"the spectrum is too poor (SNR {answer.quality['snr']:.0f})"]
            if (answer.quality or {}).get("poor")
            else []
        )
        if doubts and log is not None:
            log(f"warning: explaining the answer {target}, but {' and '.join(doubts)}: the answer is doubtful")
        if answer.offset_cm1 and log is not None:
            log(
                f"the spectrum's bands sit {answer.offset_cm1:+.1f} cm-1 from its best references' (a calibration "
                "offset, estimated): it was compared moved back, the figure shows it as read"
            )
    return explain_prepared(bundle, X[:1], spectrum.source, target, reference)


def explain_prepared(
    bundle, X: np.ndarray, source: str, target: str | None = None, reference: int | None = None
) -> Explanation:
    """:func:`explain` for one spectrum already prepared as the model's input (a ``(1, p)`` row);
    ``reference`` is the library position of its nearest reference where a prediction found it.
    """
    model = bundle.estimator
    if model.transductive:
        raise RamanIdError(
            f"{model.model} is transductive (its output depends on the other spectra in the batch): "
            "attributions for one spectrum are not defined; explain another model"
        )
    try:
        spec = model.attribution(X, target)
    except ModelError as exc:
        raise RamanIdError(str(exc)) from exc
    attribution = integrated_gradients(spec.module, X[0], spec.output)
    if reference is None:
        similarity = model.reference_similarity(X)[0]
        reference = int(np.argmax(similarity))
    row = bundle.library_meta.iloc[reference]
    ref_label = f"{row.get('mineral', bundle.labels[reference])} {row.get('rruff_id', '')}".strip()
    votes = _votes(bundle, X, spec.target) if hasattr(model, "vote_") else []
    return Explanation(
        source, spec.target, spec.label, bundle.shifts, X[0], attribution, bundle.library[reference], ref_label, votes
    )


def _votes(bundle, X: np.ndarray, element: str) -> list[dict]:
    """The references a blend's formula vote read for one spectrum, largest share of the vote first."""
    vote = bundle.estimator.vote_
    column = vote.elements_.index(element)
    presence = vote.votes[0].presence_
    meta = bundle.library_meta
    return [
        {
            "mineral": str(meta["mineral"].iloc[i]) if "mineral" in meta else str(bundle.labels[i]),
            "rruff_id": str(meta["rruff_id"].iloc[i]) if "rruff_id" in meta else "",
            "chemistry": str(meta["chemistry"].iloc[i]) if "chemistry" in meta else "",
            "similarity": round(similarity, 4),
            "weight": round(share, 4),
            "holds_target": bool(presence[i, column]),
        }
        for i, similarity, share in vote.voters(X[0])
    ]


def explain_spectrum(bundle, spectrum, out, target: str | None = None, log=None):
    """Draw the attribution of one spectrum (:func:`explain`); returns (target name, path of the figure)."""
    from ramanid import plots

    e = explain(bundle, spectrum, target, log)
    title = f"{e.source}\n{e.label}"
    if e.votes and log is not None:
        log(f"the {len(e.votes)} references of the formula vote (the blend's other part), largest share first:")
        for line in e.vote_lines():
            log(f"  {line}")
    path = plots.explanation(
        e.shifts, e.spectrum, e.attribution, title, out, e.reference, e.reference_label, notes=e.vote_lines()
    )
    return e.target, path


def embedding_figure(bundle, spectra, out, label_column: str = "mineral"):
    """RamanNet (or attention) embeddings beside PCA of the spectra, both projected to 2-D by PCA,
    with the silhouette score of the classes in the space each map is drawn from (the embedding,
    the spectra; cosine distance), since a 2-D projection of many classes overlaps them all.
    Returns (scores, path).
    """
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    from ramanid import plots
    from ramanid.errors import RamanIdError

    estimator = bundle.estimator
    if not getattr(estimator, "has_embedding", False):
        raise RamanIdError(f"model {estimator.model!r} has no embedding: use ramannet or attention_resnet")
    if label_column not in spectra.meta:
        raise RamanIdError(f"no column {label_column!r} to colour by: the set has {list(spectra.meta.columns)}")
    if len(spectra.shifts) != len(bundle.shifts) or not np.allclose(spectra.shifts, bundle.shifts, atol=1e-6):
        raise RamanIdError(
            f"the set's axis ({len(spectra.shifts)} points, {spectra.shifts[0]:.1f}-{spectra.shifts[-1]:.1f} cm-1) is "
            f"not the model's ({len(bundle.shifts)} points, {bundle.shifts[0]:.1f}-{bundle.shifts[-1]:.1f} cm-1): "
            "build it with the model's grid"
        )
    if len(spectra) < 3:
        raise RamanIdError(f"{len(spectra)} spectra: a 2-D map needs at least 3")
    labels = spectra.meta[label_column].astype(str).to_numpy()
    X = spectra.intensities
    spaces = {f"{estimator.model} embedding (PCA to 2-D)": estimator.embed(X), "PCA of the spectra": X}
    maps = {name: PCA(2, random_state=0).fit_transform(space) for name, space in spaces.items()}
    keep = np.isin(labels, [c for c in np.unique(labels) if np.sum(labels == c) > 1])
    scores = {
        name: float(silhouette_score(space[keep], labels[keep], metric="cosine"))
        if len(np.unique(labels[keep])) > 1
        else float("nan")
        for name, space in spaces.items()
    }
    return scores, plots.embedding_maps(maps, labels, scores, out)
