"""The Llama Herder on the local node: answer time, jobs/s with 1 and 2 workers, Eval latency while the herd
works, APM install time, and restart time after many jobs.

All on a fresh node with its services (APM registry, wAR, herder, workers; demo model, wasm engine):
- walk-through: `Llama.run("What is the meaning of life?", 20, cb)` to the callback firing (goal < 3 s);
- install: `apm.install("@sam/Llama-Herder")` to `✅ Downloaded` (goal < 100 ms);
- throughput: N jobs of 20 tokens queued at once, with 1 worker then 2 workers (ratio 2 workers / 1);
- latency: Eval `return 1` in another process, idle node (baseline) vs while both workers generate;
- restart: after J jobs, reopen the data dir and time the next Llama.run to its answer, against the same
  measured before the restart (ratio; the journal means no inference is redone to rebuild the workers).

Usage: .venv/bin/python bench/bench_herder.py [--jobs 40] [--restart-jobs 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aos_py.client import Client, load_wallet  # noqa: E402
from aos_py.resources import lua_dir  # noqa: E402

ALICE = load_wallet(ROOT / "tests" / "vectors" / "wallet-a.json", create=False)
CLIENT_SRC = (ROOT / "packages" / "@sam" / "Llama-Herder" / "main.lua").read_text(encoding="utf-8")
PROMPT = "What is the meaning of life?"


def value(c: Client, pid: str, code: str) -> str:
    res = c.eval(ALICE, pid, code)
    if res.get("Error"):
        raise RuntimeError(res["Error"])
    return res["Output"]["data"]


def wait(c: Client, pid: str, code: str, want: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while value(c, pid, code) != want:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{code} never became {want}")
        time.sleep(0.005)


def user(c: Client, name: str, war: float = 1000) -> str:
    pid = c.spawn(ALICE, name=name)
    c.faucet(pid, war)
    value(c, pid, 'package.loaded["@sam/Llama-Herder"] = (function()\n' + CLIENT_SRC + '\nend)()\n'
                  'L = require("@sam/Llama-Herder") N = 0')
    return pid


def one_answer(c: Client, pid: str) -> float:
    n = int(value(c, pid, "return N"))
    t0 = time.perf_counter()
    value(c, pid, f'L.run("{PROMPT}", 20, function(r) N = N + 1 end)')
    wait(c, pid, "return tostring(N)", str(n + 1))
    return time.perf_counter() - t0


def jobs_per_second(c: Client, pid: str, jobs: int) -> float:
    n = int(value(c, pid, "return N"))
    t0 = time.perf_counter()
    value(c, pid, f'for i = 1, {jobs} do L.run("Tell me a joke number " .. i, 20, function(r) N = N + 1 end) end')
    wait(c, pid, "return tostring(N)", str(n + jobs))
    return jobs / (time.perf_counter() - t0)


def eval_latency(c: Client, pid: str, count: int = 30) -> float:
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        value(c, pid, "return 1")
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def install_time(c: Client) -> float:
    pid = c.spawn(ALICE, name="installer")
    value(c, pid, (lua_dir() / "blueprints" / "apm.lua").read_text(encoding="utf-8"))
    wait(c, pid, "return type(apm) == 'table' and apm._version or ''", "2.1.0", 30)
    t0 = time.perf_counter()
    value(c, pid, 'apm.install("@sam/Llama-Herder")')
    wait(c, pid, 'return apm.installed["@sam/Llama-Herder"] or ""', "1.1.0", 30)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=40, help="jobs per throughput run")
    ap.add_argument("--restart-jobs", type=int, default=1000, help="jobs before the restart measurement")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "node"
        t0 = time.perf_counter()
        c = Client.open(d)
        print(f"first boot with services: {time.perf_counter() - t0:.2f} s")
        print(f"install @sam/Llama-Herder (apm.install -> Downloaded): {install_time(c) * 1000:.0f} ms")
        pid = user(c, "bench")
        other = c.spawn(ALICE, name="bystander")
        walk = [one_answer(c, pid) for _ in range(5)]
        print(f"Llama.run 20 tokens -> answer: median {statistics.median(walk):.3f} s (best {min(walk):.3f})")

        c.herd_workers(1)
        one = jobs_per_second(c, pid, args.jobs)
        c.herd_workers(2)
        two = jobs_per_second(c, pid, args.jobs)
        print(f"jobs/s, 20 tokens: 1 worker {one:.2f}, 2 workers {two:.2f} (ratio {two / one:.2f})")

        idle = eval_latency(c, other)
        box: dict = {}
        th = threading.Thread(target=lambda: box.setdefault("rate", jobs_per_second(c, pid, args.jobs)))
        th.start()
        time.sleep(0.3)
        busy = eval_latency(c, other)
        th.join()
        print(f"Eval latency (median of 30): idle {idle * 1000:.1f} ms, while both workers generate "
              f"{busy * 1000:.1f} ms (ratio {busy / idle:.2f})")

        done = int(value(c, pid, "return N"))
        left = max(0, args.restart_jobs - done)
        batch = 100
        t0 = time.perf_counter()
        while left > 0:
            k = min(batch, left)
            n = int(value(c, pid, "return N"))
            value(c, pid, f'for i = 1, {k} do L.run("Tell me a joke number " .. i, 4, function(r) N = N + 1 end) end')
            wait(c, pid, "return tostring(N)", str(n + k))
            left -= k
        total = int(value(c, pid, "return N"))
        print(f"{total} jobs done ({time.perf_counter() - t0:.1f} s for the extra ones)")
        before = statistics.median([one_answer(c, pid) for _ in range(3)])
        c.close()
        t0 = time.perf_counter()
        c = Client.open(d)
        reopen = time.perf_counter() - t0
        first = one_answer(c, pid)
        after = statistics.median([one_answer(c, pid) for _ in range(3)])
        print(f"restart after {total} jobs: reopen {reopen:.2f} s, first answer at once {first:.3f} s "
              f"(before restart {before:.3f} s, ratio {first / before:.2f}); then {after:.3f} s")
        c.close()
        # as a user meets it: the shell is up, the node has rebuilt its recent processes in the background
        c = Client.open(d)
        t0 = time.perf_counter()
        while c.node.offload.busy and time.perf_counter() - t0 < 60:
            time.sleep(0.01)
        warmed = time.perf_counter() - t0
        settled = one_answer(c, pid)
        print(f"restart again: background warm-up {warmed:.2f} s, then the first answer {settled:.3f} s "
              f"(ratio {settled / before:.2f} to before the restart)")
        c.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
