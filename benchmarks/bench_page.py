"""The web page in a real browser: the time from choosing N files to every row and card shown.

    python benchmarks/bench_page.py --model DIR [--files 100] [--repeats 2]

Starts the page's server in this process (whichever ramanid is on ``sys.path``: run it with
``PYTHONPATH=OLD_CHECKOUT/src`` to time an older page on the same machine and model, and compare
the medians as a ratio), opens it in Debian's headless Chromium through Playwright, chooses
``--files`` 780 nm processed RRUFF spectra written as CSV (``bench_serve.query_files``), and
waits until the table has a row and the page a card for each.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import cpu_flags, machine
from bench_serve import query_files

CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from ramanid.serve import create_app

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(args.model), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.1)
    times = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        files = [str(f) for f in query_files(Path(folder), args.files)]
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for _ in range(args.repeats):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#model:has-text('reference spectra')")
            start = time.perf_counter()
            page.set_input_files("#files", files)
            page.wait_for_function(
                f"document.querySelectorAll('tr.result').length + document.querySelectorAll('tr.error').length"
                f" >= {len(files)} && document.querySelectorAll('.card').length >= "
                "document.querySelectorAll('tr.result').length",
                timeout=1_800_000,
            )
            times.append(time.perf_counter() - start)
            page.close()
        browser.close()
    server.should_exit = True
    median = statistics.median(times)
    print(f"# {machine()}; {cpu_flags()}")
    print(
        f"{args.files} files: {', '.join(f'{t:.1f}' for t in times)} s; median {median:.1f} s, "
        f"{1000 * median / args.files:.0f} ms per file"
    )


if __name__ == "__main__":
    main()
