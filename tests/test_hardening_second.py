"""The second hardening round: nothing a user owns is deleted, the server cannot be hung or
flooded, spectra without signal get no answer, and every bad option or file is one line.

Each test reproduces one finding of the fuzz run in the issue; the hypothesis tests fuzz the
``--out`` rules and the server's uploads, file names and query strings.
"""

import contextlib
import gzip
import io
import json
import os
import shutil
import socket
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from ramanid import atomic
from ramanid.atomic import OWN_FOLDERS, atomic_folder, check_replaceable, folder_lock
from ramanid.bundle import load_bundle
from ramanid.cli import main
from ramanid.errors import OutputError, PreprocessingError, RamanIdError, printable
from ramanid.io.tables import read_wide_csv
from ramanid.preprocessing import pipeline_from_spec
from ramanid.quality import without_signal
from ramanid.serve import Limits, create_app, serve
from ramanid.spectra import SpectraSet

BUNDLES = Path(__file__).parent / "data" / "bundles_v2"
SILICON = Path(__file__).resolve().parents[2] / "shared" / "data" / "formats" / "labspec" / "532nm-191216-Si_200mu.txt"


def _toy(n=60, points=128, names=("m0", "m1", "m2")):
    rng = np.random.default_rng(0)
    y = np.arange(n) % len(names)
    x = np.linspace(100, 1400, points)
    bands = np.array([np.exp(-((x - 300 - 300 * k) ** 2) / 800) for k in range(len(names))])
    X = bands[y] + 0.05 * rng.random((n, points))
    return SpectraSet(x, X, pd.DataFrame({"mineral": [names[v] for v in y]}))


def _spectrum_text(y, x=None) -> str:
    x = np.linspace(100, 1400, len(y)) if x is None else x
    return "".join(f"{a:.2f}, {b:.6g}\n" for a, b in zip(x, y, strict=True))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return _toy().save(tmp_path_factory.mktemp("second") / "toy.npz")


@pytest.fixture(scope="module")
def model(toy):
    out = toy.parent / "model"
    result = CliRunner().invoke(
        main, ["train", "--data", str(toy), "--model", "mlp", "--epochs", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def identifier(tmp_path):
    """A copy of a small library identifier, to add references to."""
    return Path(shutil.copytree(BUNDLES / "identifier", tmp_path / "identifier"))


# --- data loss ---------------------------------------------------------------------------------


def test_train_out_a_folder_of_the_users_is_refused_and_kept(toy, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    shutil.copy(toy, out / "toy.npz")
    (out / "notes.md").write_text("mine")
    args = ["train", "--data", str(out / "toy.npz"), "--model", "mlp", "--epochs", "1", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "notes.md, toy.npz" in result.output and "did not write" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.md", "toy.npz"]


def test_train_out_an_existing_model_folder_replaces_it(toy, model, tmp_path):
    out = Path(shutil.copytree(model, tmp_path / "model"))
    args = ["train", "--data", str(toy), "--model", "mlp", "--epochs", "1", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert load_bundle(out).info.estimator and not list(tmp_path.glob(".model.*"))


def test_cv_out_keeps_the_users_report_and_reruns_into_its_own_folder(toy, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my report")
    args = ["cv", "--data", str(toy), "--model", "lr", "--folds", "2"]
    refused = CliRunner().invoke(main, [*args, "--out", str(mine)])
    assert refused.exit_code == 2 and "report.md" in refused.output
    assert (mine / "report.md").read_text() == "my report" and sorted(p.name for p in mine.iterdir()) == ["report.md"]
    own = tmp_path / "cv"
    for _ in range(2):
        result = CliRunner().invoke(main, [*args, "--out", str(own)])
        assert result.exit_code == 0, result.output
    assert (own / ".ramanid-cv").is_file() and (own / "report.md").is_file()


def test_map_out_a_folder_of_the_users_is_refused(model, tmp_path):
    np.save(tmp_path / "cube.npy", _toy(6).intensities.reshape(2, 3, -1))
    np.save(tmp_path / "axis.npy", _toy(6).shifts)
    out = tmp_path / "out"
    out.mkdir()
    (out / "data.csv").write_text("1,2\n")
    args = ["map", str(model), str(tmp_path / "cube.npy"), "--axis", str(tmp_path / "axis.npy"), "--out", str(out)]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2 and "data.csv" in refused.output
    (out / "data.csv").unlink()
    assert CliRunner().invoke(main, args).exit_code == 0
    assert CliRunner().invoke(main, args).exit_code == 0  # its own map folder is replaced


NAMES = st.sampled_from(
    ["bundle.json", "weights.safetensors", "library.npz", ".ramanid-map", "pixels.csv", "report.html", ".ramanid-cv"]
    + [".ramanid-demo", ".lock", "report.md", "toy.npz", "setup.py", "notes.txt", ".git"]
)


@given(kind=st.sampled_from(sorted(OWN_FOLDERS)), names=st.sets(NAMES, max_size=6))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_out_rules(tmp_path, kind, names):
    """A folder is replaceable exactly when everything in it is what ramanid writes for that kind;
    checking never changes it."""
    target = Path(tempfile.mkdtemp(dir=tmp_path))
    for name in names:
        (target / name).write_text("x")
    marker, own = OWN_FOLDERS[kind]
    users = names - {atomic.LOCK} - ((own if own is not None else names) if marker in names else set())
    if users:
        with pytest.raises(OutputError, match="did not write"):
            check_replaceable(target, kind)
    else:
        check_replaceable(target, kind)
    assert {p.name for p in target.iterdir()} == names


def test_stale_temporaries_of_dead_runs_are_cleaned_and_an_old_folder_restored(tmp_path):
    dead = 2**22 + 12345  # above the kernel's largest process id: no such process
    assert not Path(f"/proc/{dead}").exists()
    target = tmp_path / "model"
    (tmp_path / f".model.{dead}.abcd1234.tmp").mkdir()
    (tmp_path / f".model.{dead}.abcd1234.tmp" / "weights.safetensors").write_bytes(b"0" * 1000)
    alive = tmp_path / f".model.{os.getpid()}.efgh5678.tmp"
    alive.mkdir()
    old = tmp_path / f".model.{dead}.ijkl9012.old"
    old.mkdir()
    (old / "bundle.json").write_text("{}")
    atomic.clean_stale(target)
    assert (target / "bundle.json").is_file()  # the moved-aside folder is back
    assert alive.is_dir() and not list(tmp_path.glob(f".model.{dead}.*"))


def test_an_interrupt_between_the_two_renames_restores_the_old_folder(tmp_path, monkeypatch):
    target = tmp_path / "model"
    with atomic_folder(target) as tmp:
        (tmp / "bundle.json").write_text('{"old": true}')
    real_rename, calls = os.rename, []

    def interrupted(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the new folder is about to be renamed in
            raise KeyboardInterrupt
        return real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt), atomic_folder(target) as tmp:
        (tmp / "bundle.json").write_text('{"new": true}')
    assert json.loads((target / "bundle.json").read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_library_add_waits_for_no_one_and_loses_nothing(identifier, tmp_path):
    spectrum = tmp_path / "s.txt"
    spectrum.write_text(_spectrum_text(np.exp(-((np.linspace(100, 1400, 300) - 700) ** 2) / 50) + 0.1))
    with folder_lock(identifier, beside=True):  # another run is adding references
        busy = CliRunner().invoke(main, ["library", "add", str(identifier), str(spectrum), "--mineral", "Zzz"])
    assert busy.exit_code == 1 and "another ramanid run is writing here" in busy.output
    before = len(load_bundle(identifier).library)
    done = CliRunner().invoke(main, ["library", "add", str(identifier), str(spectrum), "--mineral", "Zzz"])
    assert done.exit_code == 0, done.output
    assert len(load_bundle(identifier).library) == before + 1


def test_an_interrupted_library_add_says_what_was_added(identifier, tmp_path, monkeypatch):
    import ramanid.bundle.references as references

    spectrum = tmp_path / "s.txt"
    spectrum.write_text(_spectrum_text(np.exp(-((np.linspace(100, 1400, 300) - 700) ** 2) / 50) + 0.1))
    before = len(load_bundle(identifier).library)

    def interrupted_reload(path):
        raise KeyboardInterrupt  # Ctrl-C after the folder was saved, while it is read back

    monkeypatch.setattr(references, "load_bundle", interrupted_reload)
    result = CliRunner().invoke(main, ["library", "add", str(identifier), str(spectrum), "--mineral", "Zzz"])
    assert (
        result.exit_code == 130
        and "interrupted: 1 reference had been added; the model folder is whole" in result.output
    )
    monkeypatch.undo()
    assert len(load_bundle(identifier).library) == before + 1  # and a retry is not needed


# --- the server --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(model):
    limits = Limits(max_upload_mb=1, max_files=5, timeout_s=30, max_zip_members=500)
    with TestClient(create_app(model, limits), base_url="http://127.0.0.1") as client:
        yield client


def _text_file(name="s.txt"):
    y = np.exp(-((np.linspace(100, 1400, 200) - 700) ** 2) / 800) + 0.05
    return ("files", (name, _spectrum_text(y).encode()))


def _zip(members: int) -> bytes:
    buffer = io.BytesIO()
    text = _spectrum_text(np.exp(-((np.linspace(100, 1400, 200) - 700) ** 2) / 800) + 0.05)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(members):
            archive.writestr(f"s{i}.txt", text)
    return buffer.getvalue()


def test_a_request_over_its_time_limit_is_ended_and_the_server_answers_the_next(model):
    limits = Limits(timeout_s=1, max_zip_members=20_000)
    with TestClient(create_app(model, limits), base_url="http://127.0.0.1") as client:
        start = time.monotonic()
        slow = client.post("/api/predict", files=[("files", ("many.zip", _zip(5_000)))])
        assert slow.status_code == 504 and "longer than 1 s" in slow.json()["error"]
        assert time.monotonic() - start < 6
        _answers_again(client)


def test_a_worker_that_dies_is_a_503_and_is_replaced(model):
    import multiprocessing
    import signal

    before = {p.pid for p in multiprocessing.active_children()}
    with TestClient(create_app(model, Limits(timeout_s=30)), base_url="http://127.0.0.1") as client:
        (worker,) = [p for p in multiprocessing.active_children() if p.pid not in before]
        os.kill(worker.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
        worker.join(10)
        lost = client.post("/api/predict", files=[_text_file()])
        assert lost.status_code == 503 and "worker process ended" in lost.json()["error"]
        _answers_again(client)


def _answers_again(client):
    for _ in range(60):  # a new worker takes the killed one's place
        answer = client.post("/api/predict", files=[_text_file()])
        if answer.status_code == 200:
            break
        time.sleep(0.5)
    assert answer.status_code == 200 and answer.json()[0]["top"]


def test_zip_members_are_capped(client):
    crowded = client.post("/api/predict", files=[("files", ("many.zip", _zip(501)))])
    assert crowded.status_code == 413 and "over 500 members" in crowded.json()["error"]


def test_a_chunked_upload_is_stopped_at_the_cap(client):
    def body():
        yield b'--x\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n\r\n'
        for _ in range(400):  # 4 MB, four times the cap, with no Content-Length
            yield b"1, 2\n" * 2000

    answer = client.post("/api/predict", content=body(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert answer.status_code == 413 and "limit of 1 MB" in answer.json()["error"]


def test_the_host_header_must_name_the_address_served(client):
    assert client.get("/api/model", headers={"host": "evil.example:8000"}).status_code == 400
    assert client.get("/api/model", headers={"host": "localhost:8000"}).status_code == 200


@pytest.mark.parametrize("name", ["a\x00b.txt", "x" * 300 + ".txt", "../../etc/passwd.txt", "\x1b[31m.txt", "..."])
def test_odd_file_names_are_answered(client, name):
    answer = client.post("/api/predict", files=[_text_file(name)])
    assert answer.status_code == 200, answer.text
    assert len(answer.json()[0]["file"]) <= 130 and "\x00" not in answer.json()[0]["file"]


@pytest.mark.parametrize("query", ["confidence=abc", "confidence=%00", "confidence=1.5", "mixture=9", "mixture=x"])
def test_bad_query_numbers_are_400(client, query):
    answer = client.post(f"/api/predict?{query}", files=[_text_file()])
    assert answer.status_code == 400 and "expected" in answer.json()["error"]


@given(
    name=st.text(max_size=200),
    query=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    content=st.binary(max_size=300),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzz_server_uploads(client, name, query, content):
    """Any file name, query string or content gets an answer or a 4xx that says why; never a 500."""
    answer = client.post(
        "/api/predict?" + query.replace("#", ""),
        files=[("files", (name, content)), _text_file()],
    )
    assert answer.status_code in (200, 400, 413, 422), answer.text
    assert answer.status_code == 200 or answer.json()["error"]


def test_a_port_in_use_is_said_before_anything_else(model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        said = []
        with pytest.raises(RamanIdError, match=f"cannot serve on 127.0.0.1:{port}"):
            serve(model, port=port, log=said.append)
        assert said == []


def test_a_header_whose_data_is_not_an_object_is_refused_at_load(model, tmp_path):
    copy = Path(shutil.copytree(model, tmp_path / "model"))
    header = json.loads((copy / "bundle.json").read_text())
    (copy / "bundle.json").write_text(json.dumps({**header, "data": 5}))
    with pytest.raises(RamanIdError, match="data"):
        create_app(copy)


# --- silently wrong ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [np.zeros(300), np.full(300, 7.0), np.full(300, 1e-300), np.linspace(0, 5, 300)],
    ids=["zeros", "constant", "underflow", "straight line"],
)
def test_a_spectrum_without_signal_gets_no_answer(identifier, tmp_path, values):
    path = tmp_path / "flat.txt"
    path.write_text(_spectrum_text(values))
    predicted = CliRunner().invoke(main, ["predict", str(identifier), str(path)])
    assert predicted.exit_code == 1 and "holds no signal" in predicted.output
    added = CliRunner().invoke(main, ["library", "add", str(identifier), str(path), "--mineral", "Flat"])
    assert added.exit_code == 1 and "holds no signal" in added.output


def test_a_real_band_has_signal_and_a_blank_map_pixel_does_not_stop_the_map(identifier, tmp_path):
    x = np.linspace(100, 1400, 128)
    band = np.exp(-((x - 700) ** 2) / 50) + 0.01 * np.random.default_rng(0).random(128)
    assert list(without_signal(np.vstack([band, np.zeros(128), np.full(128, 3.0)]))) == [False, True, True]
    cube = np.stack([np.zeros((3, 128)), np.tile(band, (3, 1))])  # the first row is blank
    np.save(tmp_path / "cube.npy", cube)
    np.save(tmp_path / "axis.npy", x)
    out = tmp_path / "map"
    args = ["map", str(identifier), str(tmp_path / "cube.npy"), "--axis", str(tmp_path / "axis.npy"), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out / "summary.csv").set_index("phase")
    assert summary.loc["not answered", "pixels"] == 3 and summary.loc["not answered", "area_share"] == 0.5


def test_label_columns_are_text(tmp_path):
    x = np.linspace(100, 1400, 8)
    rows = ["label," + ",".join(f"{v:g}" for v in x)]
    labels = ["1", "1.0", "01", "None", "NaN", ""]
    rows += [
        f"{label}," + ",".join(f"{v:.3f}" for v in np.random.default_rng(i).random(8)) for i, label in enumerate(labels)
    ]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    table = read_wide_csv(path)
    assert table.meta["label"].tolist()[:5] == labels[:5] and pd.isna(table.meta["label"].iloc[5])


def test_reference_names_are_cleaned_or_refused(identifier):
    runner = CliRunner()
    for name, message in [
        ("   ", "no mineral name"),
        ("Evil\x1b[31m\nline", "control characters"),
        ("a" * 300, "at most"),
    ]:
        result = runner.invoke(main, ["library", "add", str(identifier), str(SILICON), "--mineral", name])
        assert result.exit_code == 1 and message in result.output and "\x1b" not in result.output
    merged = runner.invoke(main, ["library", "add", str(identifier), str(SILICON), "--mineral", "Cal\u200bcite"])
    assert merged.exit_code == 0, merged.output
    assert "Cal\u200bcite" not in set(load_bundle(identifier).labels)


def test_control_characters_are_escaped_on_the_terminal(model, tmp_path):
    assert printable("a\x1b[31mb\nc\x00") == "a\\x1b[31mb\\nc\\x00"
    path = tmp_path / "evil\x1b[2J.txt"
    path.write_text("not a spectrum at all\n")
    result = CliRunner().invoke(main, ["predict", str(model), str(path)])
    assert "\x1b" not in result.output and "evil\\x1b[2J.txt" in result.output


# --- resources ---------------------------------------------------------------------------------


def test_long_class_names_give_a_small_figure_quickly(tmp_path):
    names = ("A" * 10_000 + "$\\frac$", "B\n" * 5_000, "C" * 10_000)
    data = _toy(63, 256, names).save(tmp_path / "long.npz")
    start = time.monotonic()
    result = CliRunner().invoke(main, ["cv", "--data", str(data), "--model", "lr", "--out", str(tmp_path / "cv")])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - start < 60 and (tmp_path / "cv" / "confusion_lr.png").stat().st_size < 500_000


@pytest.mark.parametrize(
    "spec, message",
    [
        ("savgol(window_length=99999999)", "longer than the spectra"),
        ("despike(window=99999999)", "despike window=99999999"),
        ("arpls(lam=-5)", "lam=-5"),
        ("asls(max_iter=1000000000)", "max_iter"),
        ("opening(width=1e300)", "width"),
        ("snip(max_half_window=500)", "spans 500 points"),
    ],
)
def test_step_settings_are_checked_before_they_run(spec, message):
    X = _toy(4, 128).intensities
    with pytest.raises(PreprocessingError, match=message) as caught:
        pipeline_from_spec(spec, np.linspace(100, 1400, 128)).fit_transform(X)
    assert len(str(caught.value)) < 300 and "110.2" not in str(caught.value)


def test_a_tampered_step_in_a_model_folder_is_refused_at_load(model, tmp_path):
    copy = Path(shutil.copytree(model, tmp_path / "model"))
    header = json.loads((copy / "bundle.json").read_text())
    (copy / "bundle.json").write_text(json.dumps({**header, "preprocess": "despike(window=99999999)"}))
    with pytest.raises(RamanIdError, match="despike window"):
        load_bundle(copy)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}", "nested deeper"),
        ('{"format": "ramanid.bundle", "version": "2"}', 'is "2": expected a whole number'),
    ],
)
def test_odd_headers_are_one_line(model, tmp_path, text, message):
    copy = Path(shutil.copytree(model, tmp_path / "model"))
    (copy / "bundle.json").write_text(text)
    with pytest.raises(RamanIdError, match=message):
        load_bundle(copy)


def test_a_large_text_file_is_refused_by_its_size_unread(model, tmp_path):
    path = tmp_path / "big.txt"
    path.write_text(_spectrum_text(np.sin(np.arange(300))))
    os.truncate(path, 600 * 2**20)  # sparse: 600 MB on paper
    result = CliRunner().invoke(main, ["read", str(path)])
    assert "a text file of 600 MB" in result.output


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--hidden", "100000000", "1<=x<=4096"),
        ("--lr", "nan", "nan is not a number"),
        ("--lr", "-1", "0<x<=10"),
        ("--wd", "inf", "0<=x<=1"),
        ("--device", "evil", "device 'evil': this machine has cpu"),
        ("--device", "cuda:7", "this machine has"),
    ],
)
def test_training_options_are_bounded(toy, tmp_path, option, value, message):
    args = ["train", "--data", str(toy), "--model", "mlp", "--out", str(tmp_path / "m"), option, value]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "m").exists()


# --- tracebacks and messages ---------------------------------------------------------------------


def test_one_class_or_two_spectra_are_one_line(tmp_path):
    one = _toy(9, 64, ("only",)).save(tmp_path / "one.npz")
    two = _toy(2, 64, ("a", "b")).save(tmp_path / "two.npz")
    runner = CliRunner()
    for command in (["cv", "--model", "lr"], ["train", "--model", "mlp", "--epochs", "1"]):
        result = runner.invoke(main, [*command, "--data", str(one), "--out", str(tmp_path / command[0])])
        assert result.exit_code == 1 and "one class ('only')" in result.output
    result = runner.invoke(main, ["train", "--model", "mlp", "--data", str(two), "--out", str(tmp_path / "o2")])
    assert result.exit_code == 1 and "too few to hold out a validation part" in result.output


def test_compressed_and_utf16_tables_are_read_or_refused_in_one_line(tmp_path):
    x = np.linspace(100, 1400, 8)
    text = "label," + ",".join(f"{v:g}" for v in x) + "\n" + "a," + ",".join(["1.5"] * 8) + "\n"
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "t16.csv").write_text(text, encoding="utf-16")
    for name in ("t.csv.gz", "t16.csv"):
        table = read_wide_csv(tmp_path / name)
        assert table.intensities.shape == (1, 8) and table.meta["label"].tolist() == ["a"]
    (tmp_path / "fake.csv.gz").write_text(text)
    args = ["build", "table", "--source", str(tmp_path / "fake.csv.gz"), "--out", str(tmp_path / "x.npz")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "not a gzip file" in result.output


def test_an_unreachable_scheduler_is_one_line_within_the_timeout(monkeypatch):
    from ramanid import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    start = time.monotonic()
    with (
        pytest.raises(RamanIdError, match="cannot reach the dask scheduler"),
        cluster.dask_client(scheduler="tcp://127.0.0.1:1"),
    ):
        pass
    assert time.monotonic() - start < 30


def test_a_scheduler_without_workers_is_one_line_not_a_silent_wait(monkeypatch):
    pytest.importorskip("dask.distributed")
    from dask.distributed import LocalCluster

    from ramanid import cluster

    monkeypatch.setattr(cluster, "WORKER_TIMEOUT", 1.0)
    with LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=None) as empty:
        with (
            pytest.raises(RamanIdError, match="no dask worker joined the scheduler"),
            cluster.dask_client(scheduler=empty.scheduler_address),
        ):
            pass


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_ends_the_server_and_its_workers_during_a_long_request(tmp_path):
    import http.client
    import subprocess
    import sys
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-c", "from ramanid.cli import main; main()", "serve", str(BUNDLES / "identifier")]
    server = subprocess.Popen([*command, "--port", str(port), "--timeout", "100"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                probe.request("GET", "/api/model")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        workers = _children(server.pid)
        assert workers
        upload = b'--x\r\nContent-Disposition: form-data; name="files"; filename="m.zip"\r\n\r\n' + _zip(9_000)

        def long_request():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection.request(
                    "POST",
                    "/api/predict",
                    upload + b"\r\n--x--\r\n",
                    {"Content-Type": "multipart/form-data; boundary=x"},
                )
                connection.getresponse().read()

        thread = threading.Thread(target=long_request, daemon=True)
        thread.start()
        time.sleep(2)
        start = time.monotonic()
        server.terminate()
        server.wait(30)
        assert time.monotonic() - start < 15  # a 5 s grace for the request in flight, then its worker is killed
        time.sleep(0.5)
        assert not [pid for pid in workers if _alive(pid)]
    finally:
        server.kill()


def test_build_rruff_checks_its_steps_on_the_grid_before_reading(rruff_zip, tmp_path):
    args = ["build", "rruff", "--source", str(rruff_zip), "--out", str(tmp_path / "r.npz")]
    result = CliRunner().invoke(main, [*args, "--preprocess", "savgol(window_length=99999999)"])
    assert result.exit_code == 1 and "longer than the spectra (1024 points)" in result.output
    assert "reading" not in result.output  # said before a file of the zip was read
