"""Token creation through AccessClient vs the same calls on a bare requests.Session.

Prints calls/s and the client/bare ratio, sequential and with 8 threads, plus the start-up
time of `jfrog-rotator --help`. Everything runs against the emulator on 127.0.0.1.

    .venv/bin/python bench/token_create.py [--calls 400] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from rotator.emulator import Emulator
from rotator.jfrog import AccessClient

BODY = {"scope": "applied-permissions/groups:bench", "expires_in": 3600, "refreshable": False,
        "include_reference_token": False, "username": "bench"}


def bare_call(session: requests.Session, url: str, token: str) -> None:
    response = session.post(url + "/access/api/v1/tokens", data=json.dumps(BODY, separators=(",", ":")),
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                            timeout=(5, 30))
    response.raise_for_status()
    response.json()


def timed(calls: int, threads: int, one_call) -> float:
    """Calls per second of `one_call(i)` over `calls` calls on `threads` threads."""
    start = time.perf_counter()
    if threads == 1:
        for i in range(calls):
            one_call(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one_call, range(calls)))
    return calls / (time.perf_counter() - start)


def bench_create(emulator: Emulator, calls: int, threads: int, rounds: int) -> dict[str, float]:
    """Median calls/s of: our client; a default requests.Session; one with trust_env=False
    (a default session looks up ~/.netrc and proxy settings on every request)."""
    client = AccessClient(emulator.url, access_token=emulator.admin_token, pool_size=max(threads, 10))
    bare, lean = requests.Session(), requests.Session()
    lean.trust_env = False
    for session in (bare, lean):
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=max(threads, 10)))
    runners = {
        "client": lambda _i: client.create_token(BODY),
        "bare": lambda _i: bare_call(bare, emulator.url, emulator.admin_token),
        "bare_no_env": lambda _i: bare_call(lean, emulator.url, emulator.admin_token),
    }
    for run in runners.values():
        run(0)  # warm the connection pools
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):  # interleave so drift on a shared machine hits all alike
        for name, run in runners.items():
            rates[name].append(timed(calls, threads, run))
    client.close()
    return {name: statistics.median(values) for name, values in rates.items()}


def bench_help(runs: int) -> float:
    exe = Path(sys.executable).parent / "jfrog-rotator"
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(exe), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}")
    with Emulator() as emulator:
        emulator.create_user("bench", groups=("bench",))
        for threads in (1, args.threads):
            r = bench_create(emulator, args.calls, threads, args.rounds)
            print(f"create token, {threads} thread(s), {args.calls} calls x {args.rounds} rounds: "
                  f"client {r['client']:6.1f}/s  bare Session {r['bare']:6.1f}/s  "
                  f"bare Session(trust_env=False) {r['bare_no_env']:6.1f}/s  ratios client/bare "
                  f"{r['client'] / r['bare']:.2f}, client/bare_no_env {r['client'] / r['bare_no_env']:.2f}")
    print(f"`jfrog-rotator --help` start-up: {bench_help(7) * 1000:.0f} ms (median of 7)")


if __name__ == "__main__":
    main()
