"""Load on the HTTP API: N concurrent clients firing commands at a loopback server for T seconds.

The server is ``uvicorn`` in its own process(es) (the app factory of ``xieshang serve``), on a
fresh SQLite file by default or on PostgreSQL with ``--pg URL``. Each client owns one proposal,
drives it to ``filed`` and then fires ``flag_key`` (a step that stays in ``filed``) on it as fast
as it can, so that every request is a full command: token check, load, checks, one transaction
(instance row, history row, outbox rows). Each request sends If-Match with the ETag of the last
answer, as a careful client does. Prints requests/s and p50/p99 latency.

    python bench/http_load.py                      # 8 clients, 10 s, SQLite
    python bench/http_load.py --seconds 20 --pg postgresql://u:p@127.0.0.1/db --workers 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from xieshang.adapters.http.commands import FACTORY, token_store_for
from xieshang.adapters.http.testing import free_port
from xieshang.records import Actor

ORG = "bench"


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


def run(url: str, clients: int, seconds: float, workers: int) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "XIESHANG_DATABASE_URL": url}
    tokens = token_store_for(url)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            FACTORY,
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
        env=env,
    )
    try:
        _wait_ready(base, server)
        committee_token = tokens.create(Actor.parse(f"c0:proposal_committee@{ORG}"))
        latencies: list[list[float]] = [[] for _ in range(clients)]
        errors = [0] * clients
        start_line = threading.Barrier(clients + 1)
        stop = threading.Event()

        def worker(k: int) -> None:
            who = f"m{k}"
            token = tokens.create(Actor.parse(f"{who}:member,chairpersons_council@{ORG}"))
            auth = {"Authorization": f"Bearer {token}"}
            committee = {"Authorization": f"Bearer {committee_token}"}
            with (
                httpx.Client(base_url=base, headers=auth, timeout=30) as client,
                httpx.Client(base_url=base, headers=committee, timeout=30) as other,
            ):
                try:
                    iid, etag = _filed(client, other, who)
                except httpx.HTTPError as e:
                    print(f"client {k}: setup failed: {e}", file=sys.stderr)
                    start_line.abort()
                    return
                body = {"trigger": "flag_key", "payload": {"lead_leader": "L"}}
                start_line.wait()
                while not stop.is_set():
                    t0 = time.perf_counter()
                    r = client.post(f"/instances/{iid}/fire", json=body, headers={"If-Match": etag})
                    latencies[k].append(time.perf_counter() - t0)
                    etag = r.headers.get("etag", etag)
                    if r.status_code != 200:
                        errors[k] += 1
                        if errors[k] == 1:
                            print(f"client {k}: {r.status_code} {r.text[:300]}", file=sys.stderr)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        try:
            start_line.wait()
        except threading.BrokenBarrierError:
            raise SystemExit("a client could not set up its proposal") from None
        began = time.perf_counter()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
    finally:
        server.terminate()
        server.wait(timeout=30)
        tokens.close()
    every = sorted(x for xs in latencies for x in xs)
    q = statistics.quantiles(every, n=100)
    return {
        "requests": len(every),
        "errors": sum(errors),
        "rps": len(every) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--pg", help="a PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--quick", action="store_true", help="4 clients for 5 seconds")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds = 4, 5.0
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg or f"sqlite:///{Path(tmp) / 'bench.db'}"
        backend = "postgresql" if args.pg else "sqlite"
        result = run(url, args.clients, args.seconds, args.workers)
    print(
        f"{backend}, {args.workers} worker(s), {args.clients} clients, {args.seconds:g} s: "
        f"{result['requests']:.0f} fire requests, {result['errors']:.0f} errors, "
        f"{result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
    )
    print(
        f"RESULT backend={backend} clients={args.clients} rps={result['rps']:.0f} "
        f"p50_ms={result['p50_ms']:.1f} p99_ms={result['p99_ms']:.1f} errors={result['errors']:.0f}"
    )


if __name__ == "__main__":
    main()
