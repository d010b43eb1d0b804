"""Load on the HTTP API: N concurrent clients firing commands at a loopback server for T seconds,
against the floor of a trivial endpoint served and loaded the same way.

The server is ``uvicorn`` in its own process(es) (the app factory of ``xieshang serve``), on a
fresh SQLite file by default or on PostgreSQL with ``--pg URL``. Each client owns one proposal,
drives it to ``filed`` and then fires ``flag_key`` (a step that stays in ``filed``) on it as fast
as it can, so that every request is a full command: token check, load, checks, one transaction
(instance row, history row, outbox rows). Each request sends If-Match with the ETag of the last
answer, as a careful client does. Prints requests/s and p50/p99 latency.

The floor, measured first in the same run with the same clients: a FastAPI app with one route
(a plain function, as the API's are) that writes one row to a fresh SQLite file
(``synchronous=FULL``, WAL, the store's connection settings) per request, its writers queued on
one in-process lock, served by uvicorn with the same options, and its startup's objects set
aside from the garbage collector as ``xieshang serve`` sets aside the API's. The last line
compares the two:

    RESULT ratio=<engine rps / floor rps> p99_ms=<engine p99> rps=<engine> floor_rps=<floor>

    python bench/http_load.py                      # 8 clients, 10 s each, SQLite
    python bench/http_load.py --quick              # 8 clients, 5 s each
    python bench/http_load.py --seconds 20 --pg postgresql://u:p@127.0.0.1/db --workers 2
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Response

from xieshang.adapters.http.commands import FACTORY, token_store_for
from xieshang.adapters.http.testing import free_port
from xieshang.adapters.sql.connect import connect_sqlite
from xieshang.records import Actor

ORG = "bench"
ENV_FLOOR_DB = "XIESHANG_BENCH_FLOOR_DB"
FLOOR_FACTORY = "http_load:floor_app"
TARGET_RATIO = 0.9
TARGET_P99_MS = 50.0

# a client's step: one request on its own connection; returns the status code
Step = Callable[[], int]


def floor_app() -> Any:
    """The floor (uvicorn factory): one route that writes one row per request to the SQLite file
    ``$XIESHANG_BENCH_FLOOR_DB``, one writer at a time, on a connection per thread."""

    path = os.environ[ENV_FLOOR_DB]
    with connect_sqlite(path, "FULL", 5000) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS steps (id INTEGER PRIMARY KEY, who TEXT, body TEXT)"
        )
    local = threading.local()
    writer = threading.Lock()
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/steps/{who}")
    def step(who: str, body: dict[str, Any], response: Response) -> dict[str, Any]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect_sqlite(path, "FULL", 5000)
        with writer:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "INSERT INTO steps (who, body) VALUES (?, ?)", (who, repr(body))
            ).lastrowid
            conn.execute("COMMIT")
        response.headers["ETag"] = f'"{row}"'
        return {"id": row, "who": who}

    gc.collect()  # served as the engine's API is: what startup made set aside (served_app)
    gc.freeze()
    return app


def _serve(factory: str, env: dict[str, str], workers: int) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            factory,
            "--app-dir",
            str(Path(__file__).resolve().parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={**os.environ, **env},
    )
    return f"http://127.0.0.1:{port}", server


def _wait_ready(base: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not become ready")


def _load(clients: int, seconds: float, setup: Callable[[int, Any], Step]) -> dict[str, float]:
    """``clients`` threads, each with its own step (``setup(k, stack)``, which may register
    clients to close on ``stack``), stepping as fast as they can for ``seconds``."""

    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_line = threading.Barrier(clients + 1)
    stop = threading.Event()

    def worker(k: int) -> None:
        with ExitStack() as stack:
            try:
                step = setup(k, stack)
            except httpx.HTTPError as e:
                print(f"client {k}: setup failed: {e}", file=sys.stderr)
                start_line.abort()
                return
            start_line.wait()
            while not stop.is_set():
                t0 = time.perf_counter()
                status = step()
                latencies[k].append(time.perf_counter() - t0)
                if status != 200:
                    errors[k] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    try:
        start_line.wait()
    except threading.BrokenBarrierError:
        raise SystemExit("a client could not set up") from None
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    every = sorted(x for xs in latencies for x in xs)
    q = statistics.quantiles(every, n=100)
    return {
        "requests": len(every),
        "errors": sum(errors),
        "rps": len(every) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
    }


def _filed(client: httpx.Client, committee: httpx.Client, proposer: str) -> tuple[str, str]:
    """Start a proposal and file it; returns its id and ETag. Every step sends If-Match."""
    r = client.post(
        "/instances",
        json={"workflow": "proposal", "data": {"title": "bench", "first_proposer": proposer}},
    )
    r.raise_for_status()
    iid = str(r.json()["id"])
    steps = [
        (client, "submit", {"category": "economy"}),
        (committee, "start_review", {}),
        (committee, "file", {"number": f"B-{iid[:8]}"}),
    ]
    for who, trigger, payload in steps:
        r = who.post(
            f"/instances/{iid}/fire",
            json={"trigger": trigger, "payload": payload},
            headers={"If-Match": r.headers["etag"]},
        )
        r.raise_for_status()
    return iid, r.headers["etag"]


def run_floor(path: str, clients: int, seconds: float, workers: int) -> dict[str, float]:
    """The trivial endpoint under the same load."""
    base, server = _serve(FLOOR_FACTORY, {ENV_FLOOR_DB: path}, workers)

    def setup(k: int, stack: Any) -> Step:
        client = stack.enter_context(httpx.Client(base_url=base, timeout=30))
        body = {"trigger": "flag_key", "payload": {"lead_leader": "L"}}
        etag = '"0"'

        def step() -> int:
            nonlocal etag
            r = client.post(f"/steps/m{k}", json=body, headers={"If-Match": etag})
            etag = r.headers.get("etag", etag)
            return r.status_code

        return step

    try:
        _wait_ready(base, server)
        return _load(clients, seconds, setup)
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(url: str, clients: int, seconds: float, workers: int) -> dict[str, float]:
    """The engine's API under the load."""
    tokens = token_store_for(url)
    base, server = _serve(FACTORY, {"XIESHANG_DATABASE_URL": url}, workers)
    try:
        _wait_ready(base, server)
        committee_token = tokens.create(Actor.parse(f"c0:proposal_committee@{ORG}"))

        def setup(k: int, stack: Any) -> Step:
            who = f"m{k}"
            token = tokens.create(Actor.parse(f"{who}:member,chairpersons_council@{ORG}"))
            client = stack.enter_context(
                httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
                )
            )
            other = stack.enter_context(
                httpx.Client(
                    base_url=base,
                    headers={"Authorization": f"Bearer {committee_token}"},
                    timeout=30,
                )
            )
            iid, etag = _filed(client, other, who)
            body = {"trigger": "flag_key", "payload": {"lead_leader": "L"}}
            first_error = True

            def step() -> int:
                nonlocal etag, first_error
                r = client.post(f"/instances/{iid}/fire", json=body, headers={"If-Match": etag})
                etag = r.headers.get("etag", etag)
                if r.status_code != 200 and first_error:
                    first_error = False
                    print(f"client {k}: {r.status_code} {r.text[:300]}", file=sys.stderr)
                return r.status_code

            return step

        return _load(clients, seconds, setup)
    finally:
        server.terminate()
        server.wait(timeout=30)
        tokens.close()


def _line(name: str, result: dict[str, float]) -> str:
    return (
        f"{name}: {result['requests']:.0f} requests, {result['errors']:.0f} errors, "
        f"{result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="of each measurement")
    parser.add_argument("--pg", help="a PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--quick", action="store_true", help="5 seconds for each measurement")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 5.0
    with tempfile.TemporaryDirectory() as tmp:
        floor = run_floor(str(Path(tmp) / "floor.db"), args.clients, args.seconds, args.workers)
        url = args.pg or f"sqlite:///{Path(tmp) / 'bench.db'}"
        backend = "postgresql" if args.pg else "sqlite"
        result = run(url, args.clients, args.seconds, args.workers)
    ratio = result["rps"] / floor["rps"]
    print(f"{args.workers} worker(s), {args.clients} clients, {args.seconds:g} s each")
    print(_line("floor (one SQLite write, writers on an in-process lock)", floor))
    print(_line(f"engine fire on {backend}", result))
    met = ratio >= TARGET_RATIO and result["p99_ms"] <= TARGET_P99_MS
    print(
        f"target: ratio >= {TARGET_RATIO} and p99 <= {TARGET_P99_MS:g} ms; "
        f"got ratio {ratio:.2f}, p99 {result['p99_ms']:.1f} ms: {'met' if met else 'not met'}"
    )
    print(
        f"RESULT ratio={ratio:.2f} p99_ms={result['p99_ms']:.1f} rps={result['rps']:.0f} "
        f"floor_rps={floor['rps']:.0f}"
    )


if __name__ == "__main__":
    main()
