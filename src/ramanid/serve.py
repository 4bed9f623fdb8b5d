"""``ramanid serve``: a local web page and HTTP API over a saved model (Starlette, served by uvicorn).

- ``GET /``: the page: drop or choose spectrum files, see the ranked answers, the unknown flag,
  the conformal set, an interactive plot of the spectrum over its nearest references with the
  attribution, and download the batch as CSV.
- ``GET /api/model``: what the model is.
- ``POST /api/predict``: multipart form, files in the field ``files``; the JSON of
  ``ramanid predict --format json``. With ``?details=1``: ``{"results": [...], "skipped": [...]}``
  where each result also carries the plot data. A file that cannot be read is a 422 answer with
  the reason when nothing in the request could be answered; never a 500.

Uploads go to a private temporary folder that is removed after the request; nothing is written
into the model folder. Request size, number of files and time are capped.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from importlib import resources
from pathlib import Path

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from ramanid.bundle import Bundle, load_bundle
from ramanid.errors import RamanIdError
from ramanid.explain import explain_prepared
from ramanid.io.calibration import AxisCorrection
from ramanid.io.files import read_spectrum_files
from ramanid.jsonable import json_ready
from ramanid.predict import predict_prepared
from ramanid.preprocessing import describe_steps


@dataclasses.dataclass(frozen=True)
class Reading:
    """How uploads are read: the laser for axes that need one, an instrument's axis correction."""

    laser_nm: float | None = None
    calibration: AxisCorrection | None = None


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may hold and take."""

    max_upload_mb: float = 50.0
    max_files: int = 200
    timeout_s: float = 120.0


def create_app(model_dir: str | Path, limits: Limits = Limits(), reading: Reading = Reading()) -> Starlette:
    """The web application for the model folder ``model_dir`` (loaded once, at start)."""
    bundle = load_bundle(model_dir)
    page = resources.files("ramanid.data").joinpath("serve.html").read_text(encoding="utf-8")

    async def index(request: Request):
        return HTMLResponse(page)

    async def model(request: Request):
        return JSONResponse(describe(bundle))

    async def predict(request: Request):
        try:
            confidence = _query_number(request, "confidence", float, 0.95, 0.0, 1.0)
            mixture = _query_number(request, "mixture", int, None, 1, 5)
        except ValueError as exc:
            return _error(400, str(exc))
        details = request.query_params.get("details") in ("1", "true")
        size = int(request.headers.get("content-length") or 0)
        if size > limits.max_upload_mb * 2**20:
            return _error(413, f"the upload is {size / 2**20:.1f} MB; the limit is {limits.max_upload_mb:g} MB")
        try:
            form = await request.form(max_files=limits.max_files, max_part_size=int(limits.max_upload_mb * 2**20))
        except Exception as exc:  # noqa: BLE001 - multipart parsing errors come in several types
            return _error(400, f"could not read the upload: {exc}")
        uploads = [f for f in form.getlist("files") if hasattr(f, "read")]
        if not uploads:
            return _error(400, "no files: send spectrum files in the multipart field 'files'")
        with tempfile.TemporaryDirectory(prefix="ramanid-upload-") as folder:
            paths = []
            for i, upload in enumerate(uploads):
                path = Path(folder) / f"{i:04d}_{Path(upload.filename or 'upload').name}"
                path.write_bytes(await upload.read())
                paths.append(path)
            try:
                with anyio.fail_after(limits.timeout_s):
                    answer = await anyio.to_thread.run_sync(
                        _answer, bundle, paths, details, confidence, reading, mixture
                    )
            except TimeoutError:
                return _error(504, f"the request took longer than {limits.timeout_s:g} s; send fewer files")
            except RamanIdError as exc:
                return _error(422, str(exc))
        results, skipped = answer
        for result in results:
            result["file"] = _original(result["file"], folder)
        skipped = [{"file": _original(s.file, folder), "reason": _original(s.reason, folder)} for s in skipped]
        if details:
            return JSONResponse({"results": results, "skipped": skipped})
        if not results:
            return _error(422, "; ".join(s["reason"] for s in skipped) or "no spectrum found", skipped=skipped)
        return JSONResponse(results)

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/model", model),
            Route("/api/predict", predict, methods=["POST"]),
        ]
    )


def describe(bundle: Bundle) -> dict:
    """What ``GET /api/model`` answers: the model's own classes (for a library identifier, the
    library's minerals, added references included) and its library.
    """
    model, info = bundle.estimator, bundle.info
    names = model.output_names
    return {
        "task": dataclasses.asdict(info.task),
        "model": model.model,
        "estimator": info.estimator,
        "identifier": model.answers_from_references,
        "classes": len(names) if model.kind == "label" else 0,
        "first_classes": names[:20] if model.kind == "label" else [],
        "elements": names if model.kind == "elements" else [],
        "range_cm1": [float(bundle.shifts[0]), float(bundle.shifts[-1])],
        "points": len(bundle.shifts),
        "references": len(bundle.references),
        "reference_classes": bundle.minerals,
        "preprocess": describe_steps(info.preprocess),
        "unknown_score": info.ood.score,
        "ramanid_version": info.ramanid_version,
        "training_data": {k: v for k, v in info.data.items() if k != "built_with"},
    }


def _answer(
    bundle: Bundle, paths: list[Path], details: bool, confidence: float, reading: Reading, mixture: int | None = None
):
    """Read, prepare once, predict; with ``details``, each answer's plot from the same inputs and
    the same nearest references.
    """
    spectra, skipped = read_spectrum_files(paths, reading.laser_nm, reading.calibration)
    X, kept, refused, quality = bundle.prepare(spectra)
    predictions = predict_prepared(
        bundle, X, [s.source for s in kept], confidence=confidence, quality=quality, mixture=mixture
    )
    results = [p.as_json() for p in predictions]
    if details:
        for i, (result, prediction) in enumerate(zip(results, predictions, strict=True)):
            result["plot"] = json_ready(_plot(bundle, X[i : i + 1], prediction))
    return results, skipped + refused


def _plot(bundle: Bundle, x: np.ndarray, prediction) -> dict:
    """The preprocessed spectrum, its nearest references (those of the answer), and the attribution."""
    references = [
        {
            "label": f"{hit.get('mineral', hit['label'])} {hit.get('rruff_id', '')}".strip(),
            "similarity": round(hit["similarity"], 4),
            "intensities": np.round(bundle.library[hit["library_index"]], 4).tolist(),
        }
        for hit in prediction.nearest
    ]
    plot = {
        "shifts": np.round(bundle.shifts, 2).tolist(),
        "spectrum": np.round(x[0], 4).tolist(),
        "references": references,
        "attribution": None,
        "target": None,
    }
    try:
        answer = prediction.top[0][0] if prediction.top else None
        e = explain_prepared(bundle, x, prediction.file, answer, prediction.nearest[0]["library_index"])
        plot["attribution"], plot["target"] = np.round(e.attribution, 5).tolist(), e.target
    except RamanIdError:
        pass  # a transductive model has no attribution for one spectrum
    return plot


def _query_number(request: Request, name: str, kind, default, low: float, high: float):
    """A number from the query string within ``low``-``high`` (exclusive for a float), the
    default where it is not given, or a ValueError saying what was expected.
    """
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    inside = value is not None and (low <= value <= high if kind is int else low < value < high)
    if not inside:
        expected = f"a whole number from {low} to {high}" if kind is int else f"a number between {low:g} and {high:g}"
        raise ValueError(f"?{name}={text[:40]!r}: expected {expected}")
    return value


def _original(text: str, folder: str) -> str:
    """A message about an uploaded file, naming the file as the user named it."""
    return re.sub(re.escape(str(folder)) + r"/\d{4}_", "", str(text))


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def serve(
    model_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: Limits = Limits(),
    reading: Reading = Reading(),
    log=print,
):
    """Run the web application until interrupted."""
    import uvicorn

    app = create_app(model_dir, limits, reading)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"warning: serving on {host}: anyone who can reach this address can use the model")
    log(f"ramanid: serving {model_dir} on http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
