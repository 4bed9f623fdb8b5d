"""The web page and its API: the framework's test client for the API, and one end-to-end run in a
real headless Chromium (Playwright driving the system's browser)."""

import json
import os
import re
import shutil
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from ramanid.bundle import load_bundle
from ramanid.cli import main
from ramanid.serve import Limits, create_app
from tests.conftest import rruff_text

CHROMIUM = Path("/usr/bin/chromium")
OLD_IDENTIFIER = Path(__file__).parent / "data" / "bundles_v2" / "identifier"
#: a Renishaw map of 12 pixels (of 16 announced: an interrupted acquisition)
MAP = Path(__file__).resolve().parents[2] / "shared" / "data" / "formats" / "renishaw" / "interrupted_acquisition.wdf"


@pytest.fixture(scope="module")
def model(rruff_780, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    data = rruff_780.spectra.save(folder / "set.npz")
    result = CliRunner().invoke(
        main, ["train", "--data", str(data), "--model", "ramannet", "--epochs", "3", "--out", str(folder / "model")]
    )
    assert result.exit_code == 0, result.output
    return folder / "model", rruff_780.spectra


@pytest.fixture(scope="module")
def rruff_file(model, tmp_path_factory):
    """A real 780 nm spectrum in RRUFF's own file format."""
    _, spectra = model
    rows = "".join(f"{x:.2f}, {y:.5f}\r\n" for x, y in zip(spectra.shifts, spectra.intensities[0], strict=True))
    path = tmp_path_factory.mktemp("files") / "Calcite__R040070__Raman__780__0__unoriented__Raman_Data_Processed__1.txt"
    path.write_text(rruff_text(rows=rows, chemistry="CaCO_3_", name="Calcite"))
    return path


@pytest.fixture(scope="module")
def client(model):
    app = create_app(model[0], Limits(max_upload_mb=1, max_files=3, timeout_s=60))
    with TestClient(app, base_url="http://127.0.0.1") as client:  # the lifespan ends the model's worker
        yield client


def test_api_model_and_predict(client, model, rruff_file):
    folder, _ = model
    described = client.get("/api/model").json()
    assert described["task"]["kind"] == "label" and described["classes"] > 100 and described["points"] == 1024
    response = client.post("/api/predict", files=[("files", (rruff_file.name, rruff_file.read_bytes()))])
    assert response.status_code == 200
    cli = CliRunner().invoke(main, ["predict", str(folder), str(rruff_file), "--format", "json"])
    api, expected = response.json()[0], json.loads(cli.stdout)[0]
    # the server's worker runs one-thread BLAS, predict every core's: float32 sums in another order
    assert [name for name, _ in api["top"]] == [name for name, _ in expected["top"]]
    np.testing.assert_allclose([p for _, p in api["top"]], [p for _, p in expected["top"]], atol=1e-6)
    assert api["answer_set"] == expected["answer_set"]
    assert api["file"].endswith(rruff_file.name) and "ramanid-upload" not in api["file"]


def test_unreadable_files_are_4xx_with_the_reason(client, rruff_file):
    response = client.post("/api/predict", files=[("files", ("empty.txt", b""))])
    assert response.status_code == 422 and "empty.txt" in response.json()["error"]
    assert "Traceback" not in response.text
    both = client.post(
        "/api/predict?details=1",
        files=[("files", ("empty.txt", b"")), ("files", (rruff_file.name, rruff_file.read_bytes()))],
    )
    body = both.json()
    assert both.status_code == 200 and len(body["results"]) == 1 and body["skipped"][0]["file"] == "empty.txt"
    plot = body["results"][0]["plot"]
    assert len(plot["shifts"]) == len(plot["spectrum"]) == len(plot["attribution"]) == 1024
    assert len(plot["references"]) == 3


def test_limits(client, rruff_file):
    assert client.post("/api/predict").status_code == 400
    big = client.post("/api/predict", files=[("files", ("big.txt", b"1, 2\n" * 300_000))])
    assert big.status_code == 413 and "limit is 1 MB" in big.json()["error"]
    many = client.post("/api/predict", files=[("files", (f"{i}.txt", b"1,2\n")) for i in range(5)])
    assert many.status_code == 400


def test_nothing_is_written_into_the_model_folder(client, model, rruff_file):
    folder, _ = model
    before = sorted(p.name for p in folder.iterdir())
    client.post("/api/predict", files=[("files", (rruff_file.name, rruff_file.read_bytes()))])
    assert sorted(p.name for p in folder.iterdir()) == before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _page(folder: Path):
    """A page of ``ramanid serve`` on ``folder`` in Debian's headless Chromium (skipped without
    it, except in CI)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: .ci/run installs Debian's chromium")
        pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
    import uvicorn
    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(folder), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.1)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM),
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            yield page
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_page_in_a_real_browser(model, rruff_file, tmp_path):
    bad = tmp_path / "not_a_spectrum.txt"
    bad.write_text("<html><body>404</body></html>")
    with TestClient(create_app(model[0]), base_url="http://127.0.0.1") as api:
        files = [("files", (rruff_file.name, rruff_file.read_bytes()))]
        details = api.post("/api/predict?details=1", files=files).json()
    with _page(model[0]) as page:
        page.wait_for_selector("#model:has-text('classes')")
        page.set_input_files("#files", [str(rruff_file), str(bad)])
        page.wait_for_selector("tr.error", timeout=60_000)
        page.wait_for_selector("tr.result", timeout=60_000)
        assert "HTML page" in page.inner_text("tr.error")
        row = page.inner_text("tr.result")
        assert rruff_file.name in row
        assert page.locator("svg path.spectrum").count() == 1 and page.locator("svg path.reference").count() == 1
        assert page.locator("svg line.attribution").count() > 100 and page.locator("svg text.band").count() > 0
        card = page.inner_text(".card")
        assert "Answer set (95%)" in card and "Why:" in card and "rests most on the bands at" in card
        assert re.search(r"Elements present: [A-Z][a-z]? [01]\.\d\d", card)
        # the hit list: ten classes, the answer first; a click overlays that hit's reference
        hits = page.locator("table.hits tr[data-hit]")
        assert hits.count() == 10 and hits.nth(0).locator("td").nth(1).inner_text() in page.inner_text(".card h3")
        second = hits.nth(1).locator("td").nth(1).inner_text()
        hits.nth(1).click()
        assert second in page.inner_text(".overlay") and "chosen" in hits.nth(1).get_attribute("class")
        # the hover readout at a known band, to 1 cm-1
        band = details["results"][0]["plot"]["bands"][0]
        box = page.locator(".card svg").bounding_box()
        lo, hi = details["results"][0]["plot"]["shifts"][0], details["results"][0]["plot"]["shifts"][-1]
        page.mouse.move(box["x"] + (50 + (band - lo) / (hi - lo) * 940) / 1000 * box["width"], box["y"] + 100)
        shown = float(page.inner_text("#tip").split(" ")[0])
        assert abs(shown - band) <= 1.0, (shown, band)
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        with page.expect_download() as download:
            page.click("#csv")
        csv = Path(download.value.path()).read_text()
        assert csv.splitlines()[0].startswith("file,answer,probability,top2") and "HTML page" in csv
        with page.expect_download() as download:
            page.click("#report")
        report = Path(download.value.path()).read_text()
        assert "ramanid report" in report and "<svg" in report and rruff_file.name in report
        assert "<script" not in report
        page.set_viewport_size({"width": 390, "height": 844})  # a phone
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
        # a map: its phases drawn and listed; a click on a pixel adds that pixel's card
        page.set_viewport_size({"width": 1280, "height": 900})
        page.set_input_files("#map", str(MAP))
        page.wait_for_selector("#phasemap canvas", timeout=60_000)
        assert "12 pixels" in page.inner_text("#mapstatus") and "16" in page.inner_text("#mapstatus")
        shares = page.locator("table.phases tr").count() - 1
        assert shares >= 1 and "%" in page.inner_text("table.phases")
        cards = page.locator(".card").count()
        page.locator("#phasemap canvas").click(position={"x": 2, "y": 2})  # the first pixel
        page.wait_for_function(f"document.querySelectorAll('.card').length > {cards}", timeout=60_000)
        assert "pixel 0 (x" in page.locator(".card h3").last.inner_text()
        page.screenshot(path=str(tmp_path / "map.png"), full_page=True)
        if os.environ.get("RAMANID_SCREENSHOTS"):
            for name in ("page.png", "phone.png", "map.png"):
                shutil.copy(tmp_path / name, Path(os.environ["RAMANID_SCREENSHOTS"]) / name)


def test_the_page_says_the_offset_a_spectrum_was_moved_back_by_and_where_a_filter_cut_it(tmp_path):
    folder = tmp_path / "identifier"
    shutil.copytree(OLD_IDENTIFIER, folder)  # a small library identifier, its folder given an offset estimate
    header = json.loads((folder / "bundle.json").read_text())
    header["identifier"]["offset"] = {"span": 4, "gain": 0.02, "from_snr": 0.0}  # its spectra read below SNR 20
    header["filter_edge"] = True  # read as identifiers built since are
    (folder / "bundle.json").write_text(json.dumps(header))
    bundle = load_bundle(folder)
    step = float(np.mean(np.diff(bundle.shifts)))
    moved = tmp_path / "quartz_high.txt"  # a quartz reference read one point (10 cm-1) high
    rows = zip(bundle.shifts + step, bundle.library[0] * 1000, strict=True)
    moved.write_text("".join(f"{x:.3f}, {y:.4f}\n" for x, y in rows))
    assert bundle.labels[0] == "Quartz"
    # the same quartz under a fluorescence background 20 times its bands' height, cut by an edge filter at 180 cm-1
    x = np.linspace(60, 1400, 2000)
    bands = np.interp(x, bundle.shifts, bundle.library[0] - bundle.library[0].min())
    measured = (bands + 20 * bands.max() * (0.6 + 0.4 * (x - 60) / 1340)) / (1 + np.exp(-(x - 180) / 8.0))
    cut = tmp_path / "quartz_cut.txt"
    cut.write_text("".join(f"{a:.3f}, {b:.4f}\n" for a, b in zip(x, measured * 1000, strict=True)))
    with _page(folder) as page:
        page.wait_for_selector("#model:has-text('minerals in its library')")
        page.set_input_files("#files", [str(moved), str(cut)])
        page.wait_for_selector("tr.result >> nth=1", timeout=60_000)
        assert f"offset +{step:.1f} cm⁻¹" in page.inner_text("tr.result >> nth=0")
        cards = page.inner_text("#plots")
        assert f"Calibration: the bands sit +{step:.1f} cm⁻¹ from the best references'" in cards
        cut_row = page.inner_text("tr.result >> nth=1")
        assert "Quartz" in cut_row and re.search(r"read from 2[0-3]\d cm⁻¹ \(filter edge\)", cut_row)
        assert re.search(r"Filter edge: below 2[0-3]\d cm⁻¹ the spectrum steps up from dark", cards)


def test_a_card_has_the_hit_list_and_bands_and_agrees_with_itself(client, rruff_file):
    body = client.post("/api/predict?details=1", files=[("files", (rruff_file.name, rruff_file.read_bytes()))]).json()
    (result,) = body["results"]
    plot = result["plot"]
    hits = plot["hits"]
    assert len(hits) == 10 and [h["class"] for h in hits[:5]] == [t[0] for t in result["top"]]
    assert all(0 <= h["reference"]["hqi"] <= 100 and len(h["reference"]["intensities"]) == 1024 for h in hits)
    assert plot["target"] == result["top"][0][0] == hits[0]["class"]  # title, overlay and attribution: the answer
    assert plot["bands"] == sorted(plot["bands"]) and 0 < len(plot["bands"]) <= 8
    assert all(h["reference"]["url"] is None or h["reference"]["url"].startswith("https://rruff.info/R") for h in hits)


def test_explain_explains_the_answer_predict_gives_and_says_when_it_is_doubtful(model, rruff_file, tmp_path):
    folder, _ = model
    runner = CliRunner()
    answer = json.loads(runner.invoke(main, ["predict", str(folder), str(rruff_file), "--format", "json"]).stdout)[0]
    result = runner.invoke(main, ["explain", str(folder), str(rruff_file), "--out", str(tmp_path / "why.png")])
    assert result.exit_code == 0 and f"explained {answer['top'][0][0]}:" in result.stdout
    assert ("warning: explaining the answer" in result.stderr) == (answer["unknown"] or answer["quality"]["poor"])


def test_predict_prints_a_short_line_per_spectrum(model, rruff_file):
    folder, _ = model
    result = CliRunner().invoke(main, ["predict", str(folder), str(rruff_file), str(rruff_file)])
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[:3] == ["file", "answer", "p"] and max(map(len, lines)) <= 140


def test_a_map_on_the_page_answers_its_pixels_and_says_what_is_wrong(client):
    mapped = client.post("/api/map", files=[("map", (MAP.name, MAP.read_bytes()))])
    assert mapped.status_code == 200, mapped.text
    body = mapped.json()
    assert len(body["phase"]) == len(body["x"]) == len(body["probability"]) == 12  # 12 of 16 measured
    assert sum(p["pixels"] for p in body["phases"]) == 12 and "16" in body["note"] and body["baseline"] == "model"
    assert all(p["colour"].startswith("#") for p in body["phases"])
    pixel = client.post(f"/api/map/pixel?token={body['token']}&pixel=5").json()["results"][0]
    assert "pixel 5 (x" in pixel["file"] and pixel["plot"]["hits"]
    # the pixel's card answers as its map colour does (same preprocessing for a map this small)
    phase = body["phases"][body["phase"][5]]["phase"]
    assert phase in ("unknown", pixel["top"][0][0])
    assert client.post(f"/api/map/pixel?token={body['token']}&pixel=12").status_code == 422
    assert client.post("/api/map/pixel?token=0123&pixel=1").status_code == 404
    assert client.post(f"/api/map/pixel?token={body['token']}&pixel=x").status_code == 400
    single = client.post("/api/map", files=[("map", ("one.txt", b"100, 1\n200, 3\n300, 2\n"))])
    assert single.status_code == 422 and "not a map" in single.json()["error"]
    assert client.post("/api/map").status_code == 400


def test_the_page_gives_the_element_model_a_folder_holds(model, rruff_file, tmp_path):
    import shutil

    folder, spectra = model
    identifier = tmp_path / "model"
    shutil.copytree(folder, identifier)
    data = spectra.save(tmp_path / "set.npz")
    train = ["train", "--data", str(data), "--task", "elements", "--model", "mlp+vote", "--epochs", "1"]
    result = CliRunner().invoke(main, [*train, "--out", str(identifier / "elements")])
    assert result.exit_code == 0, result.output
    app = create_app(identifier, Limits(max_upload_mb=1, max_files=3, timeout_s=60))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        files = [("files", (rruff_file.name, rruff_file.read_bytes()))]
        plain, detailed = (client.post(url, files=files).json() for url in ("/api/predict", "/api/predict?details=1"))
    cli = json.loads(CliRunner().invoke(main, ["predict", str(identifier), str(rruff_file), "--format", "json"]).stdout)
    for answer in (plain[0], detailed["results"][0]):
        assert list(answer["elements"]) == ["Mg", "Al", "P", "S", "Fe", "Cu"]  # the element model's, not the formulas'
        assert answer["elements"].keys() == cli[0]["elements"].keys() and answer["formula_shares"]
        assert all(isinstance(d["present"], bool) for d in answer["elements"].values())
    assert all(0 <= share <= 1 for share in detailed["results"][0]["formula_shares"].values())
