"""Raman maps: reading with coordinates, chunked answers in process and on a dask cluster,
resuming, the neighbourhood step, outputs, and bad maps."""

import base64
import json
import platform
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ramanid.bundle import load_bundle
from ramanid.bundle.inputs import FAST_BASELINE_MAX_BACKGROUND, prepare_rows
from ramanid.cli import main
from ramanid.errors import RamanIdError
from ramanid.maps import (
    NOT_MINERALS,
    REPORT_SPECTRA,
    TOO_POOR,
    UNANSWERED,
    MapData,
    MapOptions,
    majority_filter,
    map_answers,
    read_map,
    summary,
    write_map,
)
from ramanid.training.identifier import OFFSET_ESTIMATE
from tests.conftest import SHARED

OLD = Path(__file__).parent / "data" / "bundles_v2"
FORMATS = SHARED / "formats"


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(OLD / "identifier")


def _map(bundle, side=6) -> MapData:
    """A small map of the model's own references (with noise), on a regular grid."""
    rng = np.random.default_rng(0)
    rows = bundle.library[rng.integers(0, len(bundle.library), side * side)].astype(float) * 1000
    rows += rng.normal(0, 5, rows.shape)
    y, x = np.divmod(np.arange(side * side), side)
    return MapData(bundle.shifts, rows, 2.0 * x, 2.0 * y, "small", {"format": "map table"})


def test_a_shared_wire_map_is_read_with_its_grid():
    data = read_map(FORMATS / "wire" / "Streamline.wdf")
    columns, rows, xs, ys = data.grid
    assert len(data) == 2205 and (len(xs), len(ys)) == (45, 49) and data.facts["format"] == "Renishaw WiRE .wdf"


def test_the_map_command_writes_every_output_and_says_what_is_missing(tmp_path):
    out = tmp_path / "map"
    result = CliRunner().invoke(
        main,
        ["map", str(OLD / "identifier"), str(FORMATS / "renishaw" / "interrupted_acquisition.wdf"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert "12 pixels" in result.output and "(16)" in result.output  # 16 announced, 12 measured
    assert sorted(p.name for p in out.iterdir()) == [
        ".ramanid-map",  # the marker that lets a later map replace this folder
        "confidence.png",
        "phases.png",
        "pixels.csv",
        "report.html",
        "summary.csv",
    ]
    pixels = pd.read_csv(out / "pixels.csv")
    assert len(pixels) == 12 and {"x", "y", "mineral", "probability", "unknown", "snr", "poor", "phase"} <= set(pixels)
    assert list(pixels.columns[3:8]) == ["probability", "top2", "p2", "top3", "p3"]  # as the page's CSV has them
    assert (pixels["probability"] >= pixels["p2"]).all() and (pixels["p2"] >= pixels["p3"]).all()
    assert (pixels["top2"] != pixels["mineral"]).all()
    report = (out / "report.html").read_text()
    assert "data:image/png;base64," in report and "http" not in report.replace("http-equiv", "")  # self-contained
    summary = pd.read_csv(out / "summary.csv")
    minerals = summary["phase"][~summary["phase"].isin(NOT_MINERALS)]  # its pixels are unknown or too poor
    assert len(_cards(report)) == min(len(minerals), REPORT_SPECTRA)
    assert summary["pixels"].sum() == 12
    # the phases of answered pixels share their area; a pixel without an answer counts against all 12
    answered = ~summary["phase"].isin([UNANSWERED, TOO_POOR])
    assert summary["area_share"][answered].sum() == pytest.approx(1, abs=1e-3)  # rounded shares
    unanswered = summary[~answered]
    assert unanswered["area_share"].to_list() == pytest.approx(list(unanswered["pixels"] / 12), abs=1e-4)
    assert not list(tmp_path.glob(".map.chunks"))  # the chunks of a finished run are cleared


def test_pixels_too_poor_for_an_answer_are_their_own_phase(bundle):
    data = _map(bundle)
    rng = np.random.default_rng(1)
    noisy = data.intensities.copy()
    noisy[:12] = noisy[:12] / 1000 + rng.normal(0, 2.0, noisy[:12].shape)  # twelve pixels drowned in noise
    table = map_answers(bundle, MapData(data.shifts, noisy, data.x, data.y, "noisy", data.facts), MapOptions())
    poor = table["poor"].to_numpy(bool)
    assert poor[:12].all() and not poor[12:].all()
    assert ((table["phase"] == "too poor") == poor).all() and (table["mineral"][poor] != "too poor").all()  # kept
    phases = summary(table).set_index("phase")
    assert phases.loc["too poor", "pixels"] == poor.sum()
    assert phases.loc["too poor", "area_share"] == pytest.approx(poor.mean(), abs=1e-4)
    minerals = phases.drop("too poor")  # the others share the area that was answered
    assert minerals["area_share"].sum() == pytest.approx(1, abs=1e-3)


def test_the_fast_baseline_leaves_pixels_under_a_strong_background_to_the_models_own(bundle):
    """The one-pass opening cannot follow a background many times the bands' height (measured in
    benchmarks/bench_baselines.py): such pixels get the model's arPLS, the others the opening."""
    data = _map(bundle)
    t = (data.shifts - data.shifts[0]) / np.ptp(data.shifts)
    Y = data.intensities.copy()
    Y[:10] += 20 * Y[:10].max(axis=1, keepdims=True) * (0.3 + (t - 0.6) ** 2) / 0.46  # curved, 20x the bands
    fast = bundle.prepare_rows(data.shifts, Y, fast_baseline=True)
    model = bundle.prepare_rows(data.shifts, Y, fast_baseline=False)
    opening = prepare_rows(data.shifts, Y, bundle.shifts, bundle.info.resampling, bundle.fast_pipeline)
    strong = np.array([q.background_share > FAST_BASELINE_MAX_BACKGROUND for q in fast.quality])
    assert strong[:10].all() and not strong[10:].any()
    np.testing.assert_allclose(fast.X[strong], model.X[strong])
    np.testing.assert_allclose(fast.X[~strong], opening.X[~strong])


def test_a_local_dask_cluster_gives_the_in_process_answers(bundle):
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client, LocalCluster

    data = _map(bundle)
    options = MapOptions(chunk=10)
    alone = map_answers(bundle, data, options, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        spread = map_answers(bundle, data, options, client=client, progress=False)
    pd.testing.assert_frame_equal(alone, spread)


def test_the_map_command_sends_its_chunks_to_a_scheduler_given_by_address(tmp_path):
    """``--scheduler ADDRESS`` as the README shows it, against a running cluster: the in-process map."""
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    source = FORMATS / "renishaw" / "interrupted_acquisition.wdf"
    alone = ["map", str(OLD / "identifier"), str(source), "--chunk", "5", "--out", str(tmp_path / "alone")]
    assert CliRunner().invoke(main, alone).exit_code == 0
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None
    ) as cluster:
        spread = ["map", str(OLD / "identifier"), str(source), "--chunk", "5", "--out", str(tmp_path / "spread")]
        result = CliRunner().invoke(main, [*spread, "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "alone" / "pixels.csv"), pd.read_csv(tmp_path / "spread" / "pixels.csv")
    )


class _CountedRows:
    """A map's spectra that note where each read of a chunk starts."""

    def __init__(self, rows):
        self.rows, self.reads = rows, []

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, where):
        self.reads.append(where.start)
        return self.rows[where]


def test_a_dask_cluster_is_sent_a_few_chunks_at_a_time_not_the_whole_map(bundle):
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client, LocalCluster

    from ramanid import maps

    data = _map(bundle)
    data.intensities = _CountedRows(data.intensities)
    starts = list(range(0, len(data), 4))
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        answered = []
        for start, _ in maps._run(bundle, data, MapOptions(chunk=4), starts, client, threads=1):
            answered.append(start)
            assert len(data.intensities.reads) - len(answered) < maps.CHUNKS_PER_WORKER_THREAD
    assert sorted(answered) == starts == sorted(data.intensities.reads)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_worker_keeps_its_arrays_in_the_heap():
    from ramanid.cluster import keep_arrays_in_heap

    assert keep_arrays_in_heap() is True


def test_an_interrupted_map_resumes_from_its_finished_chunks(bundle, tmp_path, monkeypatch):
    from ramanid import maps

    data, options, cache = _map(bundle), MapOptions(chunk=10), tmp_path / "chunks"
    first = map_answers(bundle, data, options, cache=cache, progress=False)
    assert len(list(cache.glob("chunk_*.json"))) == 4

    def nothing_left_to_do(*args, **kwargs):
        raise AssertionError("a finished chunk was computed again")

    monkeypatch.setattr(maps, "identify_chunk", nothing_left_to_do)
    pd.testing.assert_frame_equal(first, map_answers(bundle, data, options, cache=cache, progress=False))
    other = MapOptions(chunk=10, fast_baseline=False)  # other options: the cache does not fit and is not used
    with pytest.raises(AssertionError, match="computed again"):
        map_answers(bundle, data, other, cache=cache, progress=False)


def test_the_majority_filter_mends_a_lone_pixel():
    side = 5
    y, x = np.divmod(np.arange(side * side), side)
    data = MapData(np.arange(3.0), np.zeros((side * side, 3)), x.astype(float), y.astype(float), "m")
    phases = np.array(["Calcite"] * (side * side), dtype=object)
    phases[12] = "Quartz"
    table = pd.DataFrame({"phase": phases, "probability": np.full(side * side, 0.9)})
    assert (majority_filter(data, table) == "Calcite").all()
    line = MapData(np.arange(3.0), np.zeros((4, 3)), np.arange(4.0), np.zeros(4), "line")
    assert line.grid is None and list(majority_filter(line, table.iloc[:4])) == ["Calcite"] * 4  # a line is left alone


def test_nan_pixels_are_reported_and_the_others_answered(bundle):
    data = _map(bundle, side=3)
    data.intensities[4] = np.nan
    table = map_answers(bundle, data, MapOptions(), progress=False)
    assert table["mineral"][4] == "not answered" and "not finite" in table["problem"][4]
    assert (table["mineral"].drop(index=4) != "not answered").all()


def test_bad_maps_get_one_line(tmp_path, bundle):
    runner = CliRunner()
    out = str(tmp_path / "out")
    trivista = runner.invoke(
        main, ["map", str(OLD / "identifier"), str(FORMATS / "trivista" / "map.tvf"), "--laser", "785", "--out", out]
    )
    assert trivista.exit_code == 1 and "covers 0% of the model's range" in trivista.output
    cube = tmp_path / "cube.npy"
    np.save(cube, np.zeros((2, 2, 10)))
    assert (
        "needs its shift axis" in runner.invoke(main, ["map", str(OLD / "identifier"), str(cube), "--out", out]).output
    )
    table = tmp_path / "map.csv"
    table.write_text("x,y,100,200,300\na,1,1,2,3\n")
    with pytest.raises(RamanIdError, match="x and y columns must be numbers"):
        read_map(table)
    single = tmp_path / "one.csv"
    pd.DataFrame([[0.0, 0.0, *bundle.library[0]]], columns=["x", "y", *map(str, bundle.shifts)]).to_csv(
        single, index=False
    )
    result = runner.invoke(main, ["map", str(OLD / "identifier"), str(single), "--out", out])
    assert result.exit_code == 0, result.output
    assert json.loads(json.dumps(pd.read_csv(Path(out) / "pixels.csv").to_dict("records")))[0]["x"] == 0


def test_an_npy_cube_is_read_a_chunk_at_a_time_as_stored(tmp_path):
    from ramanid.maps import NpyRows

    cube = np.random.default_rng(0).normal(size=(5, 7, 11)).astype(np.float32)
    np.save(tmp_path / "cube.npy", cube)
    rows, flat = NpyRows(tmp_path / "cube.npy"), cube.reshape(35, 11)
    assert len(rows) == 35 and rows.shape == (5, 7, 11)
    for key in (slice(3, 9), slice(30, 99), slice(None, None, 7), [4, 1]):
        np.testing.assert_array_equal(rows[key], flat[key])
    np.save(tmp_path / "fortran.npy", np.asfortranarray(cube))
    with pytest.raises(ValueError, match="C order"):
        NpyRows(tmp_path / "fortran.npy")


def _cards(report: str) -> list[str]:
    """The report's phase spectra, each an SVG image."""
    cards = re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", report)
    assert all(base64.b64decode(c).lstrip().startswith(b"<?xml") for c in cards)
    return cards


def test_the_report_shows_each_phase_over_its_reference(bundle, tmp_path):
    data = _map(bundle, side=4)
    table = map_answers(bundle, data, MapOptions(), progress=False)
    write_map(tmp_path / "out", bundle, data, table)
    minerals = summary(table)["phase"][lambda p: ~p.isin(NOT_MINERALS)]
    assert len(minerals) and len(_cards((tmp_path / "out" / "report.html").read_text())) == min(
        len(minerals), REPORT_SPECTRA
    )


def test_a_map_from_an_instrument_off_by_a_few_cm1_reports_its_offset(tmp_path):
    offsetting = load_bundle(OLD / "identifier")  # its own copy: the folder predates the estimate
    assert getattr(offsetting.estimator, "offset_estimate_", None) is None
    data = _map(offsetting, side=4)
    plain = map_answers(offsetting, data, MapOptions(), progress=False)
    assert plain["offset_cm1"].isna().all()
    write_map(tmp_path / "plain", offsetting, data, plain)
    assert "calibration offset" not in (tmp_path / "plain" / "report.html").read_text()
    # this small library's 128-point spectra read below SNR 20: estimated at every ratio here
    offsetting.estimator.offset_estimate_ = {**OFFSET_ESTIMATE, "from_snr": 0}
    step, pixels = np.mean(np.diff(offsetting.shifts)), offsetting.library[:16].astype(float) * 1000
    high = MapData(data.shifts + step, pixels, data.x, data.y, "high", data.facts)  # reads a point (10 cm-1) high
    table = map_answers(offsetting, high, MapOptions(), progress=False)
    assert (table["mineral"] == offsetting.labels[:16]).all()
    np.testing.assert_allclose(table["offset_cm1"], step, atol=0.01)
    write_map(tmp_path / "out", offsetting, high, table)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "out" / "pixels.csv")["offset_cm1"], step, atol=0.01)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "out" / "summary.csv")["median_offset_cm1"], step, atol=0.01)
    report = (tmp_path / "out" / "report.html").read_text()
    assert f"<td>{step:+.1f}</td>" in report  # each phase's median
    assert f"calibration offset: {step:+.1f} cm⁻¹, the median over the 16 pixels" in report  # the map's


def test_a_map_measured_through_an_edge_filter_under_a_background_is_read_from_past_its_cut(bundle, tmp_path):
    data = _map(bundle, side=4)
    reading = replace(bundle, info=replace(bundle.info, filter_edge=True))  # as identifiers built since are read
    plain = map_answers(reading, data, MapOptions(), progress=False)
    assert plain["filter_edge_cm1"].isna().all()
    write_map(tmp_path / "plain", reading, data, plain)
    assert "filter edge" not in (tmp_path / "plain" / "report.html").read_text()
    # the library's first 16 spectra on a finer axis from 60 cm-1, under a background 20 times their bands,
    # cut at 180 cm-1 by an edge filter
    x = np.linspace(60, 1400, 2000)
    bands = np.stack([np.interp(x, bundle.shifts, row - row.min()) for row in bundle.library[:16].astype(float)])
    background = 20 * bands.max(axis=1, keepdims=True) * (0.6 + 0.4 * (x - 60) / 1340)
    cut = MapData(x, (bands + background) / (1 + np.exp(-(x - 180) / 8.0)), data.x, data.y, "cut", data.facts)
    table = map_answers(reading, cut, MapOptions(), progress=False)
    assert table["filter_edge_cm1"].between(200, 240).all()  # one edge for the chunk: the median of its pixels'
    assert (table["mineral"] == bundle.labels[:16]).mean() >= 0.9  # 1.0 when written
    whole = map_answers(bundle, cut, MapOptions(), progress=False)  # a folder from before reads it whole
    assert whole["filter_edge_cm1"].isna().all() and (whole["mineral"] == bundle.labels[:16]).mean() <= 0.6
    write_map(tmp_path / "out", reading, cut, table)
    assert pd.read_csv(tmp_path / "out" / "pixels.csv")["filter_edge_cm1"].between(200, 240).all()
    assert re.search(r"filter edge: 16 pixels read from 2[0-3]\d cm⁻¹", (tmp_path / "out" / "report.html").read_text())


def test_a_map_with_no_phase_known_still_gets_its_report(bundle, tmp_path):
    data = _map(bundle, side=3)
    table = map_answers(bundle, data, MapOptions(chunk=4), progress=False).assign(phase="unknown", unknown=True)
    write_map(tmp_path / "out", bundle, data, table)
    assert "smaller phases" not in (tmp_path / "out" / "report.html").read_text()


def test_chunks_side_by_side_give_the_answers_of_one_chunk_at_a_time(bundle):
    import torch

    data, options = _map(bundle), MapOptions(chunk=5)
    threads_before = torch.get_num_threads()
    side_by_side = map_answers(bundle, data, options, progress=False, threads=2)
    assert torch.get_num_threads() == threads_before  # the one-thread setting of a map is undone
    pd.testing.assert_frame_equal(side_by_side, map_answers(bundle, data, options, progress=False, threads=1))


def test_confidence_gives_each_pixel_its_answer_set(tmp_path):
    out = tmp_path / "map"
    wdf = FORMATS / "renishaw" / "interrupted_acquisition.wdf"
    result = CliRunner().invoke(
        main, ["map", str(OLD / "identifier"), str(wdf), "--confidence", "0.9", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    pixels = pd.read_csv(out / "pixels.csv", keep_default_na=False)
    sets = [s.split("; ") for s in pixels["answer_set"] if s]
    assert sets and all(
        first == mineral
        for (first, *_), mineral in zip(sets, pixels["mineral"][pixels["answer_set"] != ""], strict=True)
    )
    without = CliRunner().invoke(main, ["map", str(OLD / "identifier"), str(wdf), "--out", str(tmp_path / "plain")])
    assert without.exit_code == 0 and "answer_set" not in pd.read_csv(tmp_path / "plain" / "pixels.csv")


def test_segments_answer_each_large_region_by_its_mean_spectrum(bundle):
    from ramanid.maps import SEGMENT_PIXELS, segment_phases

    side = 8
    y, x = np.divmod(np.arange(side * side), side)
    mineral = bundle.labels[0]
    rng = np.random.default_rng(1)
    rows = np.repeat(bundle.library[:1].astype(float) * 1000, side * side, axis=0) + rng.normal(0, 5, (side * side, 1))
    data = MapData(bundle.shifts, rows, x.astype(float), y.astype(float), "regions", {})
    phases = np.full(side * side, "Wrongite", dtype=object)  # the left half: one region misread
    phases[x >= 4] = "unknown"  # flagged pixels are left as they are
    small = (x >= 6) & (y < 2)  # four pixels: too few to be answered as a region
    phases[small] = "Smallite"
    assert small.sum() < SEGMENT_PIXELS <= (x < 4).sum()
    table = pd.DataFrame({"phase": phases, "probability": np.full(side * side, 0.5)})
    found = segment_phases(bundle, data, table, MapOptions())
    assert (found[x < 4] == mineral).all()
    assert (found[small] == "Smallite").all() and (found[(x >= 4) & ~small] == "unknown").all()
    line = MapData(bundle.shifts, rows[:5], np.arange(5.0), np.zeros(5), "line", {})
    assert list(segment_phases(bundle, line, table.iloc[:5], MapOptions())) == list(phases[:5])  # no grid
