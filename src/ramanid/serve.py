"""``ramanid serve``: a local web page and HTTP API over a saved model (Starlette, served by uvicorn).

- ``GET /``: the page: drop or choose spectrum files, see the ranked answers, the unknown flag,
  the conformal set, an interactive plot of the spectrum over its nearest references with the
  attribution, and download the batch as CSV.
- ``GET /api/model``: what the model is.
- ``POST /api/predict``: multipart form, files in the field ``files``; the JSON of
  ``ramanid predict --format json``. With ``?details=1``: ``{"results": [...], "skipped": [...]}``
  where each result also carries the plot data. A file that cannot be read is a 422 answer with
  the reason when nothing in the request could be answered; never a 500.

The model runs in worker processes (:class:`Workers`), so that a request over its time limit is
ended by killing its worker, and the server itself holds no model. Uploads are counted as they
stream in and go to a private temporary folder removed after the request; nothing is written
into the model folder. Request size, files, zip members and time are capped, and the ``Host``
header must name the address served (protection against DNS rebinding, as Jupyter has).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import multiprocessing
import os
import queue
import re
import shutil
import signal
import tempfile
import threading
import time
import unicodedata
import zipfile
from importlib import resources
from pathlib import Path

import anyio
import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from ramanid.errors import RamanIdError
from ramanid.io.calibration import AxisCorrection

#: how many maps the page keeps for clicks on their pixels
KEPT_MAPS = 4
#: a map of up to this many pixels is answered with the model's own baseline removal, as a click
#: on one of its pixels is; a larger one with the one-pass ``fast`` baseline (``ramanid map``'s default)
FULL_BASELINE_PIXELS = 2000
#: the longest upload file name kept (longer ones are shortened, their extension kept)
MAX_NAME = 120
#: how long a worker may take to load the model
START_TIMEOUT_S = 300.0


@dataclasses.dataclass(frozen=True)
class Reading:
    """How uploads are read: the laser for axes that need one, an instrument's axis correction."""

    laser_nm: float | None = None
    calibration: AxisCorrection | None = None


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may hold and take, and how many requests run at once (``workers``)."""

    max_upload_mb: float = 50.0
    max_files: int = 200
    timeout_s: float = 120.0
    max_zip_members: int = 10_000
    workers: int = 1


class UploadTooLarge(Exception):
    """The request body grew past the upload limit as it streamed in."""


class WorkerLost(Exception):
    """The worker answering a request ended (killed, out of memory) before it answered."""


class Workers:
    """Processes that each hold the model and answer one request at a time. A request over its
    time limit kills its worker (and whatever it was stuck in), and a new one takes its place.
    Each worker ends when the server does: it is killed at exit, and it reads requests from a
    pipe that closes when the server is killed.
    """

    def __init__(self, model_dir: str | Path, size: int = 1):
        self.model_dir = str(model_dir)
        self._idle: queue.Queue = queue.Queue()
        self._all: set[_Worker] = set()  # idle and busy, so that closing ends a request in flight too
        self._closed = False
        self.description = self._started().description  # a folder that cannot be loaded fails here
        for _ in range(size - 1):
            self._started()
        atexit.register(self.close)  # before multiprocessing's own exit joins the workers

    def _started(self) -> _Worker:
        worker = _Worker(self.model_dir)
        self._all.add(worker)
        self._idle.put(worker)
        if self._closed:
            self.close()
        return worker

    def run(self, request: tuple, timeout_s: float):
        """The answer to ``request`` (the arguments of :func:`_answer` after the bundle), or a
        TimeoutError once ``timeout_s`` has passed, waiting for a free worker included.
        """
        deadline = time.monotonic() + timeout_s
        try:
            worker = self._idle.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError from None
        try:
            answer = worker.run(request, deadline - time.monotonic())
        except (TimeoutError, WorkerLost):
            worker.kill()
            self._all.discard(worker)
            threading.Thread(target=self._replace, daemon=True).start()
            raise
        except BaseException:
            self._idle.put(worker)
            raise
        self._idle.put(worker)
        return answer

    def close(self) -> None:
        self._closed = True
        for worker in list(self._all):
            worker.kill()

    def _replace(self) -> None:
        for attempt in range(3):  # the model loaded at start, so only a passing shortage stops it
            if self._closed:
                return
            try:
                self._started()
                return
            except RamanIdError:
                time.sleep(2**attempt)


class _Worker:
    def __init__(self, model_dir: str):
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no server threads or handlers
        self._connection, theirs = context.Pipe()
        self._process = context.Process(target=_work, args=(theirs, model_dir))
        with _one_thread():
            self._process.start()
        theirs.close()
        try:
            status, payload = self._receive(START_TIMEOUT_S)
        except (TimeoutError, WorkerLost):
            status, payload = "failed", f"{model_dir}: the model's worker process did not start"
        if status != "ready":
            self.kill()
            raise RamanIdError(payload)
        self.description = payload

    def run(self, request: tuple, timeout_s: float):
        try:
            self._connection.send(request)
        except OSError as exc:
            raise WorkerLost from exc
        status, payload = self._receive(timeout_s)
        if status == "failed":
            raise RamanIdError(payload)
        if status == "crashed":
            raise RuntimeError(payload)
        return payload

    def _receive(self, timeout_s: float):
        if not self._connection.poll(max(timeout_s, 0.0)):
            raise TimeoutError
        try:
            return self._connection.recv()
        except (EOFError, OSError) as exc:
            raise WorkerLost from exc

    def kill(self) -> None:
        if self._process.exitcode is None:  # not yet reaped, so its process group is still its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
        self._process.join(5)
        self._connection.close()


#: the thread pools a worker gets one thread in: a request is a few spectra, where a second thread
#: only spins beside the first (benchmarks/RESULTS.md: a request 1.9x faster on 2 cores, a batch
#: of 100 no slower); ``--workers`` uses more cores
THREAD_POOLS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _one_thread():
    """The environment a worker starts in (a spawned process takes the parent's): one thread in each pool."""
    saved = {name: os.environ.get(name) for name in THREAD_POOLS}
    os.environ.update(dict.fromkeys(THREAD_POOLS, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _work(connection, model_dir: str) -> None:
    """A worker's life: load the model, then answer requests until the server's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the server, which ends its workers
    os.setpgrp()  # killed with its own workers (a large batch is read by a process pool): none is orphaned
    from ramanid.bundle import load_bundle

    try:
        bundle = load_bundle(model_dir)
        connection.send(("ready", describe(bundle)))
    except RamanIdError as exc:
        connection.send(("failed", str(exc)))
        return
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        try:
            job, *arguments = request
            connection.send(("answer", JOBS[job](bundle, *arguments)))
        except RamanIdError as exc:
            connection.send(("failed", str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported to the server as a 500 with its type, never a hang
            connection.send(("crashed", f"{type(exc).__name__}: {exc}"[:500]))


def create_app(
    model_dir: str | Path,
    limits: Limits = Limits(),
    reading: Reading = Reading(),
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1"),
) -> Starlette:
    """The web application for the model folder ``model_dir`` (loaded once per worker, at start);
    requests must name one of ``hosts`` in their ``Host`` header ("*" for any).
    """
    workers = Workers(model_dir, limits.workers)
    page = resources.files("ramanid.data").joinpath("serve.html").read_text(encoding="utf-8")
    max_bytes = int(limits.max_upload_mb * 2**20)
    too_large = f"the upload is over the limit of {limits.max_upload_mb:g} MB"
    maps = MapUploads()

    async def _run(job: tuple, folder: str | Path):
        """A job's answer from a worker, or the error response that says why there is none (naming
        files as the user named them, not by their place in ``folder``).
        """
        try:
            return await anyio.to_thread.run_sync(workers.run, job, limits.timeout_s)
        except TimeoutError:
            return _error(504, f"the request took longer than {limits.timeout_s:g} s; send fewer or smaller files")
        except WorkerLost:
            return _error(503, "the model's worker process ended while answering (out of memory?): send less")
        except RamanIdError as exc:
            return _error(422, maps.original(_original(str(exc), folder)))

    async def index(request: Request):
        return HTMLResponse(page)

    async def model(request: Request):
        return JSONResponse(workers.description)

    async def predict(request: Request):
        try:
            confidence = _query_number(request, "confidence", float, 0.95, 0.0, 1.0)
            mixture = _query_number(request, "mixture", int, None, 1, 5)
        except ValueError as exc:
            return _error(400, str(exc))
        details = request.query_params.get("details") in ("1", "true")
        size = request.headers.get("content-length") or "0"
        if not size.isdigit():
            return _error(400, f"Content-Length {size[:20]!r} is not a number of bytes")
        if int(size) > max_bytes:
            return _error(413, f"the upload is {int(size) / 2**20:.1f} MB; the limit is {limits.max_upload_mb:g} MB")
        with tempfile.TemporaryDirectory(prefix="ramanid-upload-") as folder:
            try:
                form = await _counted(request, max_bytes).form(max_files=limits.max_files, max_part_size=max_bytes)
                paths = await _saved(form, Path(folder))
            except UploadTooLarge:
                return _error(413, too_large)
            except Exception as exc:  # noqa: BLE001 - multipart parsing errors come in several types
                return _error(400, f"could not read the upload: {exc}")
            if not paths:
                return _error(400, "no files: send spectrum files in the multipart field 'files'")
            crowded = next((p for p in paths if _zip_members(p) > limits.max_zip_members), None)
            if crowded is not None:
                return _error(
                    413,
                    f"{_original(str(crowded), folder)}: a zip of over {limits.max_zip_members} members; send fewer",
                )
            answer = await _run(("predict", paths, details, confidence, reading, mixture), folder)
            if isinstance(answer, JSONResponse):
                return answer
            results, skipped = answer
        for result in results:
            result["file"] = _original(result["file"], folder)
        skipped = [{"file": _original(s["file"], folder), "reason": _original(s["reason"], folder)} for s in skipped]
        if details:
            return JSONResponse({"results": results, "skipped": skipped})
        if not results:
            return _error(422, "; ".join(s["reason"] for s in skipped) or "no spectrum found", skipped=skipped)
        return JSONResponse(results)

    async def map_upload(request: Request):
        """A map file in the field ``map``: its phases, each pixel's phase and probability, and a token."""
        try:
            form = await _counted(request, max_bytes).form(max_files=1, max_part_size=max_bytes)
            upload = form.get("map")
            if not hasattr(upload, "read"):
                return _error(400, "no map: send the map file in the multipart field 'map'")
            token, path = maps.new(upload.filename)
            await _copied(upload, path)
        except UploadTooLarge:
            return _error(413, too_large)
        except Exception as exc:  # noqa: BLE001 - multipart parsing errors come in several types
            return _error(400, f"could not read the upload: {exc}")
        answer = await _run(("map", path, reading), maps.folder)
        if isinstance(answer, JSONResponse):
            return answer
        return JSONResponse({**answer, "token": token, "source": _safe_name(upload.filename)})

    async def map_pixel(request: Request):
        """One pixel of a map sent before (``?token=``, ``?pixel=``), answered as ``/api/predict?details=1``."""
        try:
            pixel = _query_number(request, "pixel", int, None, 0, 10**9)
        except ValueError as exc:
            return _error(400, str(exc))
        path = maps.get(request.query_params.get("token", ""))
        if path is None or pixel is None:
            return _error(404, "no such map: send it to /api/map again (the server keeps the last few)")
        answer = await _run(("pixel", path, pixel, reading), maps.folder)
        if isinstance(answer, JSONResponse):
            return answer
        results, skipped = answer
        return JSONResponse({"results": results, "skipped": skipped})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/model", model),
            Route("/api/predict", predict, methods=["POST"]),
            Route("/api/map", map_upload, methods=["POST"]),
            Route("/api/map/pixel", map_pixel, methods=["POST", "GET"]),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))],
        lifespan=lambda app: _closing(workers, maps),
    )


@contextlib.asynccontextmanager
async def _closing(workers: Workers, maps: MapUploads):
    """The application's lifespan: its workers and its maps' files end with it."""
    yield
    workers.close()
    maps.close()


class MapUploads:
    """The last :data:`KEPT_MAPS` maps sent to the page, in a private temporary folder (removed when
    the server ends), so that a click on a pixel reads that pixel again without a new upload.
    """

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="ramanid-maps-"))
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)

    def new(self, filename: str | None) -> tuple[str, Path]:
        token = os.urandom(12).hex()
        path = self.folder / token / _safe_name(filename)
        path.parent.mkdir()
        with self._lock:
            self._paths[token] = path
            while len(self._paths) > KEPT_MAPS:
                oldest = next(iter(self._paths))
                shutil.rmtree(self._paths.pop(oldest).parent, ignore_errors=True)
        return token, path

    def get(self, token: str) -> Path | None:
        with self._lock:
            return self._paths.get(token) if re.fullmatch(r"[0-9a-f]{24}", token) else None

    def original(self, text: str) -> str:
        """A message about a map file, naming the file as the user named it."""
        return re.sub(re.escape(str(self.folder)) + r"/[0-9a-f]{24}/", "", text)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _counted(request: Request, max_bytes: int) -> Request:
    """``request`` whose body raises :class:`UploadTooLarge` once more than ``max_bytes`` have come
    in, whatever its headers say (a chunked upload has no Content-Length).
    """
    received = 0

    async def receive():
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > max_bytes:
            raise UploadTooLarge
        return message

    return Request(request.scope, receive)


async def _saved(form, folder: Path) -> list[Path]:
    """The uploaded files of ``form`` copied into ``folder`` a block at a time, named as the user
    named them (made safe: no folders, control characters or over-long names).
    """
    paths = []
    for i, upload in enumerate(u for u in form.getlist("files") if hasattr(u, "read")):
        paths.append(await _copied(upload, folder / f"{i:04d}_{_safe_name(upload.filename)}"))
    return paths


async def _copied(upload, path: Path) -> Path:
    """An uploaded file copied to ``path`` a block at a time."""
    with open(path, "wb") as out:
        while block := await upload.read(2**20):
            out.write(block)
    return path


def _safe_name(name: str | None) -> str:
    """A file name as the user gave it, without folders or control characters, at most :data:`MAX_NAME` long."""
    name = "".join(c for c in Path(name or "upload").name if unicodedata.category(c)[0] != "C") or "upload"
    if len(name) > MAX_NAME:
        suffix = "".join(Path(name).suffixes)[-20:]
        name = name[: MAX_NAME - len(suffix) - 1] + "~" + suffix
    return name


def _zip_members(path: Path) -> int:
    """How many members the zip at ``path`` has (0 for a file that is not a zip)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return len(archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return 0


def describe(bundle) -> dict:
    """What ``GET /api/model`` answers: the model's own classes (for a library identifier, the
    library's minerals, added references included) and its library.
    """
    from ramanid.preprocessing import describe_steps

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


#: the classes of a card's hit list, and the bands labelled on each spectrum
HITS, BANDS = 10, 8
#: what a table row and ``predict --format json`` list by default
TOP = 5


def _answer(bundle, paths: list[Path], details: bool, confidence: float, reading: Reading, mixture: int | None = None):
    """``(results, skipped)`` as JSON-ready lists: read, prepare once, predict; with ``details``,
    each answer's card (:func:`_plot`) from the same inputs and the same search.
    """
    from ramanid.io.files import read_spectrum_files

    spectra, skipped = read_spectrum_files(paths, reading.laser_nm, reading.calibration)
    return _answer_spectra(bundle, spectra, skipped, details, confidence, mixture)


def _answer_spectra(bundle, spectra, skipped, details: bool, confidence: float, mixture: int | None = None):
    """:func:`_answer` for spectra already read."""
    from ramanid.jsonable import json_ready
    from ramanid.predict import elements_of, predict_prepared

    X, kept, refused, quality = bundle.prepare(spectra)
    sources = [s.source for s in kept]
    top = HITS if details else TOP
    predictions = predict_prepared(bundle, X, sources, top, confidence=confidence, quality=quality, mixture=mixture)
    results = []
    for i, prediction in enumerate(predictions):
        result = prediction.as_json()
        if details:
            result["plot"] = _plot(bundle, X[i : i + 1], prediction)  # plain lists of finite numbers
            result["read_as"] = _read_as(kept[i])
            if prediction.top:  # the table's answer is the same as predict's: its top five, their elements
                result["top"] = result["top"][:TOP]
                shares = elements_of(prediction.top[:TOP], bundle.references.formulas)
                if prediction.formula_shares is None:
                    result["elements"] = json_ready(shares)
                else:  # the folder's element model answers; the formulas of the top five beside it
                    result["formula_shares"] = {e: d["probability"] for e, d in shares.items()}
        results.append(result)
    return results, [{"file": str(s.file), "reason": str(s.reason)} for s in skipped + refused]


def _map(bundle, path: Path, reading: Reading) -> dict:
    """A map's phases for the page: each phase with its colour, pixels, area share and mean
    probability (as ``summary.csv``), each pixel's position, phase and probability, and which
    baseline removal was used (:data:`FULL_BASELINE_PIXELS`).
    """
    from matplotlib.colors import to_hex

    from ramanid.jsonable import json_ready
    from ramanid.maps import MapOptions, map_answers, read_map, summary
    from ramanid.plots import phase_colours

    data = read_map(path, reading.laser_nm, reading.calibration)
    fast = len(data) > FULL_BASELINE_PIXELS
    table = map_answers(bundle, data, MapOptions(fast_baseline=fast), progress=False, threads=1)  # a worker is one core
    phases = summary(table)
    colour = phase_colours(phases["phase"])  # as in phases.png
    order = {name: i for i, name in enumerate(phases["phase"])}
    probability = np.nan_to_num(table["probability"].to_numpy(float), nan=0.0)
    return {
        "phases": [{**row, "colour": to_hex(colour[row["phase"]])} for row in json_ready(phases.to_dict("records"))],
        "x": np.round(data.x.astype(float), 4).tolist(),
        "y": np.round(data.y.astype(float), 4).tolist(),
        "phase": [order[p] for p in table["phase"]],
        "probability": np.round(probability, 3).tolist(),
        "note": data.facts.get("note"),
        "baseline": "fast" if fast else "model",
    }


def _pixel(bundle, path: Path, pixel: int, reading: Reading):
    """One pixel of a map as :func:`_answer` answers a file, with its card."""
    from ramanid.maps import read_map
    from ramanid.spectra import Spectrum

    data = read_map(path, reading.laser_nm, reading.calibration)
    if not 0 <= pixel < len(data):
        raise RamanIdError(f"{path.name} has {len(data)} pixels: no pixel {pixel}")
    where = f"{path.name} pixel {pixel} (x {data.x[pixel]:g}, y {data.y[pixel]:g})"
    spectrum = Spectrum(data.shifts, np.asarray(data.intensities[pixel], dtype=np.float64), {"file": where})
    return _answer_spectra(bundle, [spectrum], [], True, 0.95)


def _plot(bundle, x: np.ndarray, prediction) -> dict:
    """A card's data: the preprocessed spectrum with its bands, its nearest references (names and
    similarities), the ranked hit list (each class with its best reference's spectrum), and the
    attribution towards the answer.
    """
    from ramanid.explain import explain_prepared
    from ramanid.predict import reference_label

    references = [
        {
            "label": reference_label(hit),
            "similarity": round(hit["similarity"], 4),
        }
        for hit in prediction.nearest
    ]
    plot = {
        "shifts": np.round(bundle.shifts, 2).tolist(),
        "spectrum": np.round(x[0], 4).tolist(),
        "bands": bands(bundle.shifts, x[0]),
        "references": references,
        "hits": hit_list(bundle, x[0], prediction.top),
        "attribution": None,
        "target": None,
    }
    try:
        answer = prediction.top[0][0] if prediction.top else None
        e = explain_prepared(bundle, x, prediction.file, answer, prediction.nearest[0]["library_index"])
        plot["attribution"], plot["target"] = np.round(e.attribution, 5).tolist(), e.target
        plot["votes"] = e.votes
    except RamanIdError:
        pass  # a transductive model, or a classical one not linear in the spectrum, has no attribution
    return plot


def hit_list(bundle, x: np.ndarray, top: list[tuple[str, float]]) -> list[dict]:
    """Each class of ``top`` with its probability and its library reference most like ``x``: the
    hit quality index (HQI, 100 x the squared cosine of the two preprocessed spectra, as library
    search software reports it), the reference's RRUFF id and page, its spectrum and its bands.
    """
    labels, meta = np.asarray(bundle.labels).astype(str), bundle.library_meta
    norm = np.linalg.norm(x) or 1.0
    hits = []
    for name, probability in top:
        hit = {"class": name, "probability": round(float(probability), 4), "reference": None}
        rows = np.flatnonzero(labels == name)
        if len(rows):
            library = bundle.library[rows].astype(np.float64)
            cosine = library @ x / (np.linalg.norm(library, axis=1) * norm + 1e-12)
            best = int(np.argmax(cosine))
            rruff_id = str(meta.iloc[rows[best]].get("rruff_id", "") or "")
            hit["reference"] = {
                "rruff_id": rruff_id,
                "url": f"https://rruff.info/{rruff_id}" if re.fullmatch(r"R\d{6}", rruff_id) else None,
                "hqi": round(100 * max(float(cosine[best]), 0.0) ** 2, 1),
                "intensities": np.round(library[best], 3).tolist(),
                "bands": bands(bundle.shifts, library[best]),
            }
        hits.append(hit)
    return hits


def bands(shifts: np.ndarray, y: np.ndarray, count: int = BANDS) -> list[float]:
    """The shifts of the ``count`` most prominent bands of ``y`` (``scipy.signal.find_peaks``,
    prominence at least 5% of its range), in order of shift.
    """
    from scipy.signal import find_peaks

    y = np.asarray(y, dtype=np.float64)
    peaks, found = find_peaks(y, prominence=0.05 * (np.ptp(y) or 1.0))
    strongest = peaks[np.argsort(-found["prominences"])[:count]]
    return sorted(round(float(shifts[i]), 1) for i in strongest)


def _read_as(spectrum) -> str | None:
    """A note on a spectrum whose axis was not read as Raman shift in cm-1 as it stands, or None."""
    meta = spectrum.meta
    notes = [str(meta[k]) for k in ("converted", "note") if meta.get(k)]
    return "; ".join(notes) or None


#: what a worker does, by the first item of a request
JOBS = {"predict": _answer, "map": _map, "pixel": _pixel}


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
    """Run the web application until interrupted; the port is taken before anything is said."""
    import socket

    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RamanIdError(f"cannot serve on {host}:{port}: {exc.strerror}; choose another --port or --host") from exc
    hosts = ("*",) if host in ("0.0.0.0", "::") else tuple(dict.fromkeys((host, "127.0.0.1", "localhost", "::1")))
    app = create_app(model_dir, limits, reading, hosts)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"warning: serving on {host}: anyone who can reach this address can use the model")
    log(f"ramanid: serving {model_dir} on http://{host}:{port}/ (Ctrl-C to stop)")
    # a request in flight at Ctrl-C gets 5 s to finish; then its worker is killed with the others
    uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)).run(sockets=[sock])
