"""``ramanid map``: every pixel of a Raman map identified, as a phase map with its summary.

A map is read whole as one block (:func:`read_map`: instrument maps and line scans, a wide CSV or
Parquet table with ``x`` and ``y`` columns, an ``.npy`` cube with its axis, streamed from disk),
then answered chunk by chunk: each chunk is resampled, measured and preprocessed as one batch
(:meth:`ramanid.bundle.Bundle.prepare_rows`; by default with the one-pass ``opening`` baseline,
which runs at map speed) and identified through the same answers as ``predict``
(:func:`ramanid.predict.answer_arrays`). Chunks run in this process, one per core at once, or on
a ``dask.distributed`` cluster, where the model is sent to each worker once and a few chunks per
worker thread are in flight at a time. A neighbourhood step may then mend each pixel's phase from
its neighbours (:func:`majority_filter`) and answer each region of one phase by its mean spectrum
(:func:`segment_phases`). Finished chunks are kept beside the output folder, so an interrupted run
resumes (``--resume``); the output folder is written whole.

Outputs (:func:`write_map`): ``pixels.csv``, ``summary.csv``, ``phases.png``, ``confidence.png``
and a self-contained ``report.html``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ramanid.atomic import atomic_folder, atomic_write
from ramanid.cores import available_cores
from ramanid.errors import RamanIdError
from ramanid.predict import answer_arrays

#: an answer's label for a pixel that is flagged unknown, and for one that could not be answered
UNKNOWN, UNANSWERED = "unknown", "not answered"
#: the phase of a pixel too poor for a confident answer (its answer stays in ``mineral``)
TOO_POOR = "too poor"
#: the phases that are not a mineral
NOT_MINERALS = (UNKNOWN, UNANSWERED, TOO_POOR)
#: the neighbourhood steps offered (``majority``: the 3 x 3 probability-weighted majority;
#: ``segments``: that, then each region of one phase answered by its mean spectrum)
NEIGHBOURHOODS = ("off", "majority", "segments")
#: the fewest pixels of a region that ``segments`` answers by its mean spectrum
SEGMENT_PIXELS = 10
#: chunks sent ahead of their answers, per worker thread (a dask cluster's or this process's)
CHUNKS_PER_WORKER_THREAD = 2
#: the report draws a representative spectrum for this many of the largest phases
REPORT_SPECTRA = 12


@dataclass
class MapData:
    """A map as read: spectra on one axis (``intensities`` may be read from its file on demand,
    :class:`NpyRows`), each pixel's ``x`` and ``y`` (µm where the file says so, else pixel
    indices), and notes.
    """

    shifts: np.ndarray
    intensities: np.ndarray
    x: np.ndarray
    y: np.ndarray
    source: str
    facts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.intensities)

    @property
    def grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """``(column of each pixel, row of each pixel, x values, y values)`` where the pixels lie on a
        full regular grid, else None (a line scan, an irregular map).
        """
        xs, columns = np.unique(np.round(self.x, 6), return_inverse=True)
        ys, rows = np.unique(np.round(self.y, 6), return_inverse=True)
        if len(xs) * len(ys) != len(self) or len(xs) < 2 or len(ys) < 2:
            return None
        if len(np.unique(rows * len(xs) + columns)) != len(self):
            return None
        return columns, rows, xs, ys


@dataclass
class MapOptions:
    """How a map is answered."""

    chunk: int = 1000
    mixture: int | None = None
    confidence: float | None = None
    fast_baseline: bool = True
    neighbourhood: str = "off"


def read_map(
    path: str | Path, laser_nm: float | None = None, calibration=None, axis: str | Path | None = None
) -> MapData:
    """A map from an instrument file (its largest block), a wide CSV or Parquet table with ``x``
    and ``y`` columns, or an ``.npy`` cube ``(rows, columns, points)`` or matrix with its ``axis``.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".npy"):
        data = _npy_map(path, axis)
    elif name.endswith((".parquet", ".pq")) or (name.endswith((".csv", ".csv.gz", ".tsv")) and _has_xy(path)):
        data = _table_map(path)
    else:
        from ramanid.io.files import read_blocks

        blocks = [b for b in read_blocks(path, laser_nm) if hasattr(b, "columns")]
        if not blocks:
            raise RamanIdError(f"{path}: holds single spectra, not a map: use 'ramanid predict'")
        block = max(blocks, key=len)
        columns = block.columns
        x = columns.get("x", columns.get("distance", columns.get("time", columns.get("z", np.arange(len(block))))))
        y = columns.get("y", np.zeros(len(block)))
        data = MapData(
            block.shifts, block.intensities, np.asarray(x, float), np.asarray(y, float), str(path), dict(block.facts)
        )
    if calibration is not None:
        data.shifts = calibration(data.shifts)
        data.facts["calibrated"] = calibration.describe()
    if len(data) < 1:
        raise RamanIdError(f"{path}: the map has no pixels")
    return data


def _has_xy(path: Path) -> bool:
    head = pd.read_csv(path, nrows=0, sep=None if path.suffix.lower() == ".tsv" else ",", engine="python")
    return {"x", "y"} <= {str(c).strip().lower() for c in head.columns}


def _table_map(path: Path) -> MapData:
    """A wide table with ``x`` and ``y`` columns (CSV or Parquet); empty or non-numeric values are
    unmeasured pixels, reported as such.
    """
    from ramanid.io.tables import read_wide_csv, wide_table

    if path.name.lower().endswith((".parquet", ".pq")):
        table = wide_table(pd.read_parquet(path), str(path), "pandas (Parquet)", allow_missing=True)
    else:
        table = read_wide_csv(path, allow_missing=True)
    columns = {str(c).strip().lower(): c for c in table.meta.columns}
    if "x" not in columns or "y" not in columns:
        raise RamanIdError(f"{path}: a map table needs columns 'x' and 'y' (have {list(table.meta.columns)[:8]})")
    try:
        x, y = (pd.to_numeric(table.meta[columns[k]]).to_numpy(float) for k in ("x", "y"))
    except (ValueError, TypeError) as exc:
        raise RamanIdError(f"{path}: the x and y columns must be numbers ({exc})") from exc
    return MapData(table.shifts, table.intensities, x, y, str(path), {"format": "map table"})


def _npy_map(path: Path, axis) -> MapData:
    if axis is None:
        raise RamanIdError(f"{path}: an .npy map needs its shift axis: give --axis AXIS.npy")
    try:
        cube = NpyRows(path)
        shifts = np.load(axis, allow_pickle=False).astype(float)
    except (OSError, ValueError) as exc:
        raise RamanIdError(f"{path}: not a numeric .npy map with its axis ({exc})") from exc
    if len(cube.shape) not in (2, 3) or cube.shape[-1] != len(shifts):
        raise RamanIdError(
            f"{path}: shape {cube.shape}: expected (rows, columns, {len(shifts)}) or (pixels, {len(shifts)})"
        )
    rows, columns = (cube.shape[0], cube.shape[1]) if len(cube.shape) == 3 else (1, cube.shape[0])
    y, x = np.divmod(np.arange(rows * columns), columns)
    order = np.argsort(shifts)
    if not np.array_equal(order, np.arange(len(shifts))):
        raise RamanIdError(f"{axis}: the axis must increase (the cube is read as it is stored)")
    return MapData(
        shifts,
        cube,
        x.astype(float),
        y.astype(float),
        str(path),
        {"format": ".npy cube"},
    )


class NpyRows:
    """The pixel spectra of an ``.npy`` cube, read from the file a chunk at a time: a memory map
    would keep every page it has read resident, the whole cube by the end of a map.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        mapped = np.load(self.path, mmap_mode="r", allow_pickle=False)  # the header: shape, type, where data start
        if not mapped.flags.c_contiguous or mapped.dtype.kind not in "iuf":
            raise ValueError(
                f"expected a numeric array in C order, not {mapped.dtype} (C order: {mapped.flags.c_contiguous})"
            )
        self.shape, self.dtype, self.offset = mapped.shape, mapped.dtype, mapped.offset
        self.points = self.shape[-1] if self.shape else 0

    def __len__(self) -> int:
        return int(np.prod(self.shape[:-1]))

    def __getitem__(self, key) -> np.ndarray:
        """Rows: a slice (read at once), or any other index numpy takes (read row by row)."""
        if isinstance(key, slice) and key.step in (None, 1):
            start, stop, _ = key.indices(len(self))
            return self._read(start, max(stop - start, 0))
        rows = np.arange(len(self))[key]
        return np.stack([self._read(int(r), 1)[0] for r in np.atleast_1d(rows)]).reshape(*rows.shape, self.points)

    def _read(self, start: int, count: int) -> np.ndarray:
        step = self.points * self.dtype.itemsize
        values = np.fromfile(self.path, self.dtype, count * self.points, offset=self.offset + start * step)
        return values.reshape(count, self.points)


def identify_chunk(bundle, shifts: np.ndarray, Y: np.ndarray, options: MapOptions) -> dict:
    """Answers for one chunk of pixels: mineral, probability, the next two minerals and their
    probabilities, unknown, signal-to-noise ratio, poor, the calibration offset where the model
    estimated one (:attr:`ramanid.predict.Prediction.offset_cm1`), the shift the pixel was read
    from past an edge filter's cut where one was found (:mod:`ramanid.preprocessing.edge`), a
    problem for pixels that could not be answered, the answer set and the components where asked.
    Plain lists, so that a chunk travels from a worker and is kept on disk as JSON.
    """
    inputs = bundle.prepare_rows(shifts, Y, options.fast_baseline)
    n = len(Y)
    answer = {
        "mineral": [UNANSWERED] * n,
        "probability": [float("nan")] * n,
        "top2": [""] * n,
        "p2": [float("nan")] * n,
        "top3": [""] * n,
        "p3": [float("nan")] * n,
        "unknown": [False] * n,
        "snr": [float("nan")] * n,
        "poor": [False] * n,
        "offset_cm1": [float("nan")] * n,
        "filter_edge_cm1": [float("nan")] * n,
        "problem": [inputs.problems.get(i, "") for i in range(n)],
    }
    if options.mixture:
        answer["components"] = [""] * n
    if options.confidence is not None:
        answer["answer_set"] = [""] * n
    if len(inputs.X):
        a = answer_arrays(bundle, inputs.X, options.confidence, options.mixture, inputs.quality)
        names = bundle.estimator.output_names
        values = a.proba if a.proba is not None else a.scores
        top = _largest(values, 3)
        for k, row in enumerate(inputs.rows.tolist()):
            answer["mineral"][row] = names[top[k, 0]]
            answer["probability"][row] = float(values[k, top[k, 0]])
            for rank, j in enumerate(top[k, 1:], start=2):
                answer[f"top{rank}"][row], answer[f"p{rank}"][row] = names[j], float(values[k, j])
            answer["unknown"][row] = bool(a.flagged[k])
            answer["snr"][row] = float(inputs.quality[k].as_dict()["snr"])
            answer["poor"][row] = bool(inputs.quality[k].poor)
            edge = inputs.quality[k].filter_edge_cm1
            answer["filter_edge_cm1"][row] = float("nan") if edge is None else round(edge, 1)
            if a.offsets is not None:
                answer["offset_cm1"][row] = round(float(a.offsets[k]), 2)
            if a.sets is not None:
                answer["answer_set"][row] = "; ".join(str(names[j]) for j in a.sets[k])
            if a.mixtures is not None:
                mix = a.mixtures[k]
                answer["components"][row] = " + ".join(f"{c.mineral} {c.fraction:.2f}" for c in mix.components)
                answer["unknown"][row] = answer["unknown"][row] or mix.unknown
    return answer


def _largest(values: np.ndarray, k: int) -> np.ndarray:
    """The columns of each row's ``k`` largest values, largest first (a partition, not a sort of
    every class).
    """
    if values.shape[1] > k:
        columns = np.argpartition(-values, k - 1, axis=1)[:, :k]
    else:
        columns = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    order = np.argsort(-np.take_along_axis(values, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1)


def map_answers(
    bundle,
    data: MapData,
    options: MapOptions,
    cache: Path | None = None,
    client=None,
    progress=True,
    threads: int | None = None,
) -> pd.DataFrame:
    """Every pixel's answer, chunk by chunk (in this process on ``threads`` threads, default one per
    core, or on ``client``'s dask cluster), reusing the chunks already in ``cache`` from an earlier
    run of the same map, model and options.
    """
    from tqdm.auto import tqdm

    starts = list(range(0, len(data), options.chunk))
    key = _fingerprint(bundle, data, options)
    done = {start: _cached(cache, start, key) for start in starts}
    todo = [s for s in starts if done[s] is None]
    bar = tqdm(total=len(data), unit="px", desc="mapping", disable=not progress)
    bar.update(sum(min(options.chunk, len(data) - s) for s in starts if done[s] is not None))
    for start, answer in _run(bundle, data, options, todo, client, threads or available_cores()):
        done[start] = answer
        _store(cache, start, key, answer)
        bar.update(len(answer["mineral"]))
    bar.close()
    table = pd.concat([pd.DataFrame(done[s]) for s in starts], ignore_index=True)
    table.insert(0, "y", data.y)
    table.insert(0, "x", data.x)
    table["phase"] = np.where(table["poor"], TOO_POOR, np.where(table["unknown"], UNKNOWN, table["mineral"]))
    if options.neighbourhood in ("majority", "segments"):
        table["phase"] = majority_filter(data, table)
    if options.neighbourhood == "segments":
        table["phase"] = segment_phases(bundle, data, table, options)
    return table


def _run(bundle, data: MapData, options: MapOptions, starts: list[int], client, threads: int):
    """``(start, answer)`` of each chunk, as soon as it is done (the cache keeps each at once)."""

    def chunk(start):
        return np.asarray(data.intensities[start : start + options.chunk], dtype=np.float64)

    def answered(start):
        return identify_chunk(bundle, data.shifts, chunk(start), options)

    if client is None:
        yield from _in_threads(answered, starts, threads)
        return
    from dask.distributed import as_completed

    from ramanid.cluster import on_worker

    model = client.scatter(_folder_files(bundle.path), broadcast=True)  # the model, once per worker
    waiting = iter(starts)
    in_flight = {}

    def submit(start):
        future = client.submit(on_worker, _remote_chunk, model, data.shifts, chunk(start), options, pure=False)
        in_flight[future] = start
        return future

    # a few chunks per worker thread at a time, so that the map is never all in this process's memory
    limit = CHUNKS_PER_WORKER_THREAD * max(1, sum(client.nthreads().values()))
    done = as_completed([submit(start) for start in itertools.islice(waiting, limit)])
    for future in done:
        yield in_flight.pop(future), future.result()
        following = next(waiting, None)
        if following is not None:
            done.add(submit(following))


def _in_threads(work, starts: list[int], threads: int):
    """``(start, work(start))`` in order, ``threads`` chunks at a time, each chunk on one thread with
    one-thread BLAS and torch: numpy, scipy and torch release the GIL in their loops, and on 2
    cores two chunks side by side ran 1.6-1.8 times as fast as one chunk on two-thread products
    (``benchmarks/bench_maps.py --speed``).
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    pool = ThreadPoolExecutor(threads, thread_name_prefix="ramanid-map")
    pending = deque()
    try:
        torch.set_num_threads(1)
        with threadpool_limits(1):
            for start in starts:
                pending.append((start, pool.submit(work, start)))
                if len(pending) > CHUNKS_PER_WORKER_THREAD * threads:  # not the whole map in memory
                    first, future = pending.popleft()
                    yield first, future.result()
            while pending:
                first, future = pending.popleft()
                yield first, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(before)


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")}


_WORKER_MODELS: dict[str, object] = {}


def _remote_chunk(files: dict[str, bytes], shifts, Y, options: MapOptions) -> dict:
    """:func:`identify_chunk` on a dask worker: the model is loaded from its files once per worker."""
    import tempfile

    from ramanid.bundle import load_bundle

    digest = hashlib.sha256(files["bundle.json"]).hexdigest()
    if digest not in _WORKER_MODELS:
        folder = Path(tempfile.mkdtemp(prefix="ramanid-model-"))
        for name, content in files.items():
            (folder / name).write_bytes(content)
        _WORKER_MODELS[digest] = load_bundle(folder)
    return identify_chunk(_WORKER_MODELS[digest], shifts, Y, options)


def _fingerprint(bundle, data: MapData, options: MapOptions) -> str:
    digest = hashlib.sha256((Path(bundle.path) / "bundle.json").read_bytes())
    digest.update(json.dumps({**asdict(options), "source": data.source, "n": len(data)}, sort_keys=True).encode())
    digest.update(np.asarray(data.shifts).tobytes())
    digest.update(np.asarray(data.intensities[:: max(1, len(data) // 64)]).tobytes())  # a sample of the pixels
    return digest.hexdigest()[:16]


def _cached(cache: Path | None, start: int, key: str):
    path = None if cache is None else cache / f"chunk_{start:09d}.json"
    if path is None or not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return stored["answer"] if isinstance(stored, dict) and stored.get("key") == key else None


def _store(cache: Path | None, start: int, key: str, answer: dict) -> None:
    if cache is None:
        return
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_write(cache / f"chunk_{start:09d}.json") as tmp:
        Path(tmp).write_text(json.dumps({"key": key, "answer": answer}))


def majority_filter(data: MapData, table: pd.DataFrame) -> np.ndarray:
    """Each pixel's phase replaced by the phase of the largest summed probability over its 3 x 3
    neighbourhood (on a regular grid; elsewhere the phases as they are). Memory grows with the
    pixels only, not with the number of phases.
    """
    grid = data.grid
    phases = table["phase"].to_numpy(object)
    if grid is None:
        return phases
    columns, rows, xs, ys = grid
    names, codes = np.unique(phases.astype(str), return_inverse=True)
    weights = np.maximum(np.nan_to_num(table["probability"].to_numpy(float), nan=0.0), 1e-6)
    at = np.full((len(ys) + 2, len(xs) + 2), -1)  # each pixel's position on a grid padded by one
    at[rows + 1, columns + 1] = np.arange(len(phases))
    around = np.stack([at[rows + 1 + dr, columns + 1 + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)], axis=1)
    code, weight = np.where(around >= 0, codes[around], -1), np.where(around >= 0, weights[around], 0.0)
    support = np.stack([(weight * (code == code[:, [k]])).sum(axis=1) for k in range(code.shape[1])], axis=1)
    return names[code[np.arange(len(phases)), np.argmax(support, axis=1)]].astype(object)


def segment_phases(bundle, data: MapData, table: pd.DataFrame, options: MapOptions) -> np.ndarray:
    """Each connected region of one known phase (at least :data:`SEGMENT_PIXELS` pixels, on a
    regular grid) given the answer for the mean of its pixels' spectra, or ``unknown`` where that
    mean is flagged: many spectra of one grain, averaged, are read more surely than each alone.
    Chosen over the majority filter alone on validation maps (benchmarks/RESULTS.md).
    """
    from scipy import ndimage

    phases, grid = table["phase"].to_numpy(object), data.grid
    if grid is None:
        return phases
    columns, rows, xs, ys = grid
    names, codes = np.unique(phases.astype(str), return_inverse=True)
    region = np.full(len(phases), -1)
    count = 0
    for code, name in enumerate(names):
        if name in NOT_MINERALS:
            continue
        labels = np.zeros((len(ys), len(xs)), dtype=int)
        labels[rows, columns] = codes == code
        labels, _ = ndimage.label(labels)
        found = labels[rows, columns]
        sizes = np.bincount(found)
        sizes[0] = 0  # the pixels of other phases
        kept = sizes >= SEGMENT_PIXELS
        region[kept[found]] = (count + np.cumsum(kept) - 1)[found[kept[found]]]
        count += int(kept.sum())
    if not count:
        return phases
    sums, pixels = np.zeros((count, len(data.shifts))), np.zeros(count)
    for start in range(0, len(data), options.chunk):  # the map read once more, a chunk at a time
        part = region[start : start + options.chunk]
        Y = np.asarray(data.intensities[start : start + options.chunk], dtype=np.float64)
        keep = (part >= 0) & np.isfinite(Y).all(axis=1)
        np.add.at(sums, part[keep], Y[keep])
        pixels += np.bincount(part[keep], minlength=count)
    inputs = bundle.prepare_rows(data.shifts, sums / pixels[:, None], options.fast_baseline)
    if not len(inputs.X):
        return phases
    a = answer_arrays(bundle, inputs.X, None, None, inputs.quality)
    numbers, first = np.unique(region, return_index=True)
    answer = phases[first[numbers >= 0]].copy()  # each region's phase as it was
    output = np.array(bundle.estimator.output_names, dtype=object)
    answer[inputs.rows] = np.where(a.flagged, UNKNOWN, output[np.argmax(a.scores, axis=1)])
    phases = phases.copy()
    phases[region >= 0] = answer[region[region >= 0]]
    return phases


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Each phase's pixels, share of the answered area (for the pixels not answered and those too
    poor for an answer, their share of the whole map), mean probability and median calibration
    offset (over its pixels with an estimate: an instrument's offset reads the same in every
    phase), largest first.
    """
    unanswered = (UNANSWERED, TOO_POOR)
    answered = table[~table["phase"].isin(unanswered)]
    rows = [
        {
            "phase": phase,
            "pixels": int(len(part)),
            "area_share": round(len(part) / max(len(table) if phase in unanswered else len(answered), 1), 4),
            "mean_probability": round(float(np.nanmean(part["probability"])), 4) if len(part) else float("nan"),
            "median_offset_cm1": _median(part["offset_cm1"]) if "offset_cm1" in part else float("nan"),
        }
        for phase, part in table.groupby("phase")
    ]
    return pd.DataFrame(rows).sort_values("pixels", ascending=False, ignore_index=True)


def _median(values: pd.Series) -> float:
    """The median of the finite values, NaN where there are none."""
    finite = values.to_numpy(float)[np.isfinite(values.to_numpy(float))]
    return round(float(np.median(finite)), 2) if len(finite) else float("nan")


def _signed(value: float) -> str:
    return "" if np.isnan(value) else f"{value:+.1f}"


def write_map(out: str | Path, bundle, data: MapData, table: pd.DataFrame) -> Path:
    """Write the map's outputs into ``out``, whole or not at all."""
    from ramanid import plots

    phases = summary(table)
    with atomic_folder(out, "map") as folder:
        table.to_csv(folder / "pixels.csv", index=False)
        phases.to_csv(folder / "summary.csv", index=False)
        plots.phase_map(data, table, phases, folder / "phases.png")
        plots.confidence_map(data, table, folder / "confidence.png")
        (folder / "report.html").write_text(_report(bundle, data, table, phases, folder), encoding="utf-8")
    return Path(out)


def _report(bundle, data: MapData, table: pd.DataFrame, phases: pd.DataFrame, folder: Path) -> str:
    """One self-contained HTML page: the two maps, the summary, and each phase's most confident
    pixel over the reference it matched best (for the :data:`REPORT_SPECTRA` largest phases).
    """

    def image(path: Path) -> str:
        return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()

    shown = [p for p in phases["phase"] if p not in NOT_MINERALS][:REPORT_SPECTRA]
    cards = _phase_cards(bundle, data, table, shown)
    more = len(phases) - len(shown) - int(phases["phase"].isin(NOT_MINERALS).sum())
    if more > 0:
        cards.append(f"<p>{more} smaller phases are in the table only.</p>")
    offsets = table["offset_cm1"].to_numpy(float) if "offset_cm1" in table else np.zeros(0)
    estimated = bool(np.isfinite(offsets).any())  # by a model that estimates offsets
    rows = "".join(
        f"<tr><td>{_html(r.phase)}</td><td>{r.pixels}</td><td>{r.area_share:.1%}</td>"
        f"<td>{r.mean_probability:.3f}</td>{f'<td>{_signed(r.median_offset_cm1)}</td>' if estimated else ''}</tr>"
        for r in phases.itertuples()
    )
    notes = "".join(
        f"<li>{_html(k)}: {_html(v)}</li>"
        for k, v in data.facts.items()
        if k in ("format", "note", "calibrated", "converted")
    )
    offset_column = ""
    if estimated:
        offset_column = (
            "<th title=\"the calibration offset estimated on the phase's pixels: how far their bands sit from "
            "their best references', median\">offset (cm⁻¹)</th>"
        )
        notes += (
            f"<li>calibration offset: {_signed(_median(table['offset_cm1']))} cm⁻¹, the median over the "
            f"{int(np.isfinite(offsets).sum())} pixels with an estimate (how far their bands sit from their best "
            "references'; where it is not 0, correct the axis with <code>ramanid calibrate</code>)</li>"
        )
    edges = table["filter_edge_cm1"].to_numpy(float) if "filter_edge_cm1" in table else np.zeros(0)
    if np.isfinite(edges).any():
        notes += (
            f"<li>filter edge: {int(np.isfinite(edges).sum())} pixels read from {np.nanmedian(edges):.0f} cm⁻¹ "
            "(median): below it their spectra step up from dark at an edge filter's cut under a background, "
            "which no baseline follows</li>"
        )
    title = _html(data.source)
    maps = f'<img alt="phase map" src="{image(folder / "phases.png")}">' + (
        f'<img alt="confidence map" src="{image(folder / "confidence.png")}">'
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ramanid map: {title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5rem auto}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>Phase map of {_html(data.source)}</h1>
<p>{len(data)} pixels; model {_html(str(bundle.path))} ({_html(bundle.estimator.model)},
{len(bundle.library)} references).
Unknown pixels (the unknown flag) are grey; pixels too poor for a confident answer are pale and
crossed (their answers are in pixels.csv).</p><ul>{notes}</ul>
{maps}
<h2>Phases</h2><table><tr><th>phase</th><th>pixels</th><th>area</th><th>mean probability</th>{offset_column}</tr>
{rows}</table>
<h2>A representative spectrum of each phase, over its best reference</h2>{"".join(cards)}</body></html>"""


def _phase_cards(bundle, data: MapData, table: pd.DataFrame, shown: list[str]) -> list[str]:
    """For each phase of ``shown``, its most confident pixel over its best reference, as HTML."""
    from ramanid import plots

    if not shown:
        return []
    phase_of, probability = table["phase"].to_numpy(), table["probability"].to_numpy()
    pixels = [int(np.flatnonzero(phase_of == p)[np.nanargmax(probability[phase_of == p])]) for p in shown]
    inputs = bundle.prepare_rows(data.shifts, np.asarray(data.intensities[pixels], dtype=float))
    similarity = bundle.estimator.reference_similarity(inputs.X) if len(inputs.X) else None
    cards = []
    for k, row in enumerate(inputs.rows.tolist()):
        phase, best = shown[row], pixels[row]
        own = np.flatnonzero(bundle.labels == phase)
        reference = own[np.argmax(similarity[k][own])] if len(own) else int(np.argmax(similarity[k]))
        buffer = io.BytesIO()
        title = f"{phase}: pixel x={table['x'][best]:g}, y={table['y'][best]:g}"
        plots.spectrum_over_reference(bundle.shifts, inputs.X[k], bundle.library[reference], title, buffer)
        picture = base64.b64encode(buffer.getvalue()).decode()
        cards.append(f"<h3>{_html(phase)}</h3><img alt='{_html(phase)}' src='data:image/svg+xml;base64,{picture}'>")
    return cards


def _html(text) -> str:
    import html

    return html.escape(str(text))
