"""Peak memory of ``ramanid serve`` under an upload over its cap (issue 28): a chunked upload,
which has no Content-Length, and the same upload with one.

    python benchmarks/bench_serve_upload.py [--model DIR] [--mb 300]

Starts ``ramanid serve`` in its own process on a free port (whichever ramanid is on
``sys.path``: run it with ``PYTHONPATH=OLD_CHECKOUT/src`` to measure an older version on the same
machine), waits for it to answer, then streams ``--mb`` MB of multipart body to
``/api/predict`` in 1 MB chunks. Reported: the answer, its time, and the peak resident memory
(VmHWM) of the server process and of every process under it (the model's workers), read from
/proc after the uploads.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import cpu_flags, machine

MODEL = Path(__file__).resolve().parents[1] / "tests" / "data" / "bundles_v2" / "identifier"
BOUNDARY = "ramanidbench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_mb(pid: int) -> float:
    """VmHWM of ``pid``, in MB (0 once it has ended)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def descendants(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            child = int(stat.parent.name)
            children += [child, *descendants(child)]
    return children


def body(mb: int):
    yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.txt"\r\n\r\n'.encode()
    block = b"100.0, 1.0\n" * (2**20 // 11)
    for _ in range(mb):
        yield block
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def upload(port: int, mb: int, chunked: bool) -> tuple[int, str, float]:
    """``(status, message, seconds)`` of one upload of ``mb`` MB."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Host": "127.0.0.1"}
    if not chunked:
        headers["Content-Length"] = str(sum(len(part) for part in body(mb)))
    start = time.perf_counter()
    try:
        connection.request("POST", "/api/predict", body=body(mb), headers=headers, encode_chunked=chunked)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before the whole body was sent
    try:
        response = connection.getresponse()
        status, text = response.status, response.read().decode(errors="replace")
    except (ConnectionResetError, http.client.RemoteDisconnected) as exc:
        status, text = 0, f"connection closed: {exc}"
    seconds = time.perf_counter() - start
    connection.close()
    try:
        text = json.loads(text).get("error", text)
    except (json.JSONDecodeError, AttributeError):
        pass
    return status, text[:100], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--mb", type=int, default=300)
    args = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-c", "from ramanid.cli import main; main()", "serve", str(args.model)]
    server = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/api/model", headers={"Host": "127.0.0.1"})
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        print(f"# {machine()}; {cpu_flags()}")
        print(f"# model {args.model}; at rest: server {peak_mb(server.pid):.0f} MB peak", end="")
        print("".join(f", process {pid} {peak_mb(pid):.0f} MB" for pid in descendants(server.pid)))
        for chunked in (True, False):
            status, message, seconds = upload(port, args.mb, chunked)
            kind = "chunked (no Content-Length)" if chunked else "with Content-Length"
            print(f"{args.mb} MB {kind}: HTTP {status} in {seconds:.2f} s: {message}")
        print(f"peak RSS: server {peak_mb(server.pid):.0f} MB", end="")
        print("".join(f", process {pid} {peak_mb(pid):.0f} MB" for pid in descendants(server.pid)))
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
