"""Cold start of `aos` to a usable prompt on an existing data directory (target: < 1.0 s).

Measures, in a pseudo-terminal, the wall time from launching `python -m aos_py NAME` until the process's own
prompt (`...@aos-2.0.4[Inbox:N]> `) is drawn, i.e. the node is open, the process found and probed. Also times
`aos NAME --run "return 1"` end to end. Baseline, measured in the same run: a bare interpreter importing
prompt_toolkit (the floor for any prompt-toolkit shell), so the ratio shows what the node adds.

Usage: .venv/bin/python bench/bench_repl.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pexpect

ROOT = Path(__file__).resolve().parent.parent
PROMPT = r"@.*aos-[0-9.]+.*\[Inbox:"


def env_for(home: Path) -> dict:
    env = dict(os.environ)
    env.update({"HOME": str(home), "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color",
                "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")})
    return env


def aos_args(home: Path, *extra: str) -> list[str]:
    return ["-m", "aos_py", "--data-dir", str(home / "node"), "--wallet", str(home / "wallet.json"), *extra]


def time_prompt(home: Path) -> float:
    start = time.perf_counter()
    child = pexpect.spawn(sys.executable, aos_args(home, "bench"), env=env_for(home), encoding="utf-8",
                          timeout=60, dimensions=(40, 140))
    child.expect(PROMPT)
    elapsed = time.perf_counter() - start
    child.sendline(".exit")
    child.expect(pexpect.EOF)
    child.close()
    return elapsed


def time_cmd(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def fill(home: Path, count: int) -> None:
    """Give the process a history: `count` Eval messages that change its state."""
    sys.path.insert(0, str(ROOT))
    from aos_py.client import Client, load_wallet

    wallet = load_wallet(home / "wallet.json")
    client = Client.open(home / "node")
    try:
        pid = client.find_processes(wallet.address, "bench")[0]["id"]
        ids = [client.send(wallet, pid, data=f"Counter = (Counter or 0) + {i}; Log = Log or {{}}; Log[#Log + 1] = {i}",
                           tags=[("Action", "Eval")]) for i in range(count)]
        client.wait_result(pid, ids[-1], timeout=600)
    finally:
        client.close()
    print(f"process log filled with {count} messages")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--messages", type=int, default=500,
                        help="messages put in the process's log first, so start-up includes loading real state")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aos-bench-") as tmp:
        home = Path(tmp)
        env = env_for(home)
        first = time_cmd([sys.executable, *aos_args(home, "bench", "--run", "return 1")], env)
        print(f"first run (wallet + node + spawn): {first:.3f} s (not part of the figure)")
        fill(home, args.messages)
        base = [time_cmd([sys.executable, "-c", "import prompt_toolkit"], env) for _ in range(args.runs)]
        prompt = [time_prompt(home) for _ in range(args.runs)]
        run = [time_cmd([sys.executable, *aos_args(home, "bench", "--run", "return 1")], env)
               for _ in range(args.runs)]
    b, p, r = statistics.median(base), statistics.median(prompt), statistics.median(run)
    print(f"baseline: python + import prompt_toolkit  median {b:.3f} s over {args.runs} runs")
    print(f"aos cold start to process prompt           median {p:.3f} s (min {min(prompt):.3f}, "
          f"max {max(prompt):.3f})  ratio {p / b:.2f}x baseline  target < 1.0 s: {'PASS' if p < 1.0 else 'FAIL'}")
    print(f"aos --run 'return 1' end to end            median {r:.3f} s  ratio {r / b:.2f}x baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
