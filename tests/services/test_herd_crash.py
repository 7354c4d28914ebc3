"""A worker killed mid-job: the node (the aos that hosts it) dies with SIGKILL while a worker is generating.
After a restart the job is computed again from the log and answered exactly once; no wAR is lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aos_py.client import Client, load_wallet
from aos_py.resources import wasm_path

pytestmark = pytest.mark.skipif(not wasm_path().is_file(), reason="wasm/llama.wasm is not built (run `make wasm`)")
ROOT = Path(__file__).resolve().parents[2]
ALICE = load_wallet(ROOT / "tests" / "vectors" / "wallet-a.json", create=False)

CHILD = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from aos_py.client import Client, load_wallet
    from aos_py.node import parallel

    data_dir, signal_file = sys.argv[1], Path(sys.argv[2])
    alice = load_wallet(Path(sys.argv[3]), create=False)
    original = parallel.Offload.start

    def start(self, pid, entry, work):
        if any(t["name"] == "Action" and t["value"] == "Inference" for t in entry.msg["Tags"]):
            def stuck():              # the worker is generating ... and never finishes: the node is killed
                signal_file.write_text(pid)
                time.sleep(3600)
            return original(self, pid, entry, stuck)
        return original(self, pid, entry, work)
    parallel.Offload.start = start

    c = Client.open(data_dir)
    user = c.spawn(alice, name="victim")
    c.faucet(user, 1)
    src = Path(sys.argv[4]).read_text()
    c.eval(alice, user, 'package.loaded["@sam/Llama-Herder"] = (function()\\n' + src + '\\nend)()')
    c.eval(alice, user, 'N = 0 L = require("@sam/Llama-Herder") '
                        'L.run("Tell me a joke", 10, function(r) N = N + 1 Answer = r end)')
    Path(str(signal_file) + ".user").write_text(user)
    time.sleep(3600)
''')


def test_a_job_in_flight_when_the_node_dies_is_answered_once_after_restart(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    signal_file = tmp_path / "stuck"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path / "node"), str(signal_file),
                              str(ROOT / "tests" / "vectors" / "wallet-a.json"),
                              str(ROOT / "packages" / "@sam" / "Llama-Herder" / "main.lua")], env=env)
    try:
        deadline = time.monotonic() + 60
        while not (signal_file.exists() and Path(str(signal_file) + ".user").exists()):
            assert child.poll() is None, "the node process ended early"
            assert time.monotonic() < deadline, "the job never reached a worker"
            time.sleep(0.05)
        time.sleep(0.5)          # the round that dispatched the job commits it as pending
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    user = Path(str(signal_file) + ".user").read_text()

    c = Client.open(tmp_path / "node")
    try:
        deadline = time.monotonic() + 30
        while c.eval(ALICE, user, "return N")["Output"]["data"] != "1":
            assert time.monotonic() < deadline, "no answer after the restart"
            time.sleep(0.05)
        time.sleep(1.0)
        assert c.eval(ALICE, user, "return N")["Output"]["data"] == "1"     # exactly once
        assert c.eval(ALICE, user, "return Answer")["Output"]["data"]
        war = c.services()["war"]
        bals = json.loads(c.dryrun(war, tags=[("Action", "Balances")])["Messages"][0]["Data"])
        supply = int(c.dryrun(war, tags=[("Action", "Total-Supply")])["Messages"][0]["Data"])
        assert sum(int(v) for v in bals.values()) == supply == 10**12
        assert int(bals[user]) == 10**12 - (1 + (4 + 10))        # exactly the fee left the user
        status = c.herd_status()
        assert all(w["state"] == "idle" for w in status["workers"]) and not status["queue"]
    finally:
        c.close()
