"""Nothing acknowledged is lost: a node under load is SIGKILLed at random moments and recovers by replay.

A child OS process hosts a node where two processes play a 10,000-message
ping-pong while the child also sends its own messages. It prints every id it
was told about (a send that returned; a result a subscriber saw). The test
kills it with SIGKILL at a random point, reopens the data directory and checks:
every acknowledged message is in the log, every hash chain verifies, and once
the node has finished the game each process's state equals a clean replay of
its log (digest of the runtime's state dump), with no message applied twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aos_py.node.cu import data_value
from aos_py.node.node import Node
from aos_py.node.su import verify_chain
from aos_py.runtime import ProcessRuntime

ROOT = Path(__file__).resolve().parent.parent
TOTAL = 10_000
KILLS = 5

CHILD = textwrap.dedent("""
    import sys, threading
    from aos_py.client import Client, Wallet
    PLAYER = '''
    Rally = Rally or 0
    Notes = Notes or 0
    Handlers.add('note', 'Note', function(m) Notes = Notes + 1 end)
    Handlers.add('ball', function(m) return m.Action == 'Ping' or m.Action == 'Pong' end, function(m)
      Rally = Rally + 1
      if Rally < Limit then
        Send({Target = m.From, Action = (m.Action == 'Ping') and 'Pong' or 'Ping'})
      end
    end)
    '''
    out_lock = threading.Lock()
    def say(line):
        with out_lock:
            sys.stdout.write(line + "\\n")
            sys.stdout.flush()
    c = Client.open(sys.argv[1])
    w = Wallet.generate("ed25519")
    a = c.spawn(w, name="a")
    b = c.spawn(w, name="b")
    for pid in (a, b):
        c.eval(w, pid, "Limit = %d\\n" % (int(sys.argv[2]) // 2 + 1) + PLAYER)
    say("P %s %s" % (a, b))
    for pid in (a, b):
        c.subscribe(pid, lambda e: say("R %s %s" % (e["process"], e["id"])))
    c.send(w, a, data="Send({Target = '%s', Action = 'Ping'})" % b, tags=[("Action", "Eval")])
    n = 0
    while True:
        n += 1
        say("S %s %s" % (a, c.send(w, a, data=str(n), tags=[("Action", "Note")])))
""")


def _run_until_kill(data_dir: Path, rng: random.Random) -> tuple[str, str, set[tuple[str, str]], set[tuple[str, str]]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir), str(TOTAL)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    computed: set[tuple[str, str]] = set()
    sent: set[tuple[str, str]] = set()
    pids = None
    kill_after = rng.randint(20, TOTAL - 1500)   # acknowledged results before the kill
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                raise AssertionError(f"child ended early: {child.stderr.read()[-2000:]}")
            kind, *rest = line.split()
            if kind == "P":
                pids = (rest[0], rest[1])
            elif kind == "R":
                computed.add((rest[0], rest[1]))
            elif kind == "S":
                sent.add((rest[0], rest[1]))
            if len(computed) >= kill_after:
                break
        child.send_signal(signal.SIGKILL)
        # lines already written before the kill were acknowledged too
        for line in child.stdout:
            kind, *rest = line.split()
            if kind == "R":
                computed.add((rest[0], rest[1]))
            elif kind == "S":
                sent.add((rest[0], rest[1]))
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert pids is not None
    return pids[0], pids[1], computed, sent


def _replay_digest(node: Node, pid: str) -> tuple[str, int]:
    rt = ProcessRuntime()
    env = node.env(pid)
    n = 0
    for msg_json, data, _journal in node.store.replay_rows(pid):
        msg = json.loads(msg_json)
        msg["Data"] = data_value(data)
        rt.handle(msg, env)
        n += 1
    digest = hashlib.sha256(rt.state_dump().encode("utf-8", "surrogateescape")).hexdigest()
    rt.close()
    return digest, n


@pytest.mark.parametrize("seed", range(KILLS))
def test_sigkill_at_a_random_moment_loses_nothing_acknowledged(tmp_path, seed):
    rng = random.Random(1000 + seed)
    d = tmp_path / "node"
    a, b, computed, sent = _run_until_kill(d, rng)
    print(f"seed {seed}: killed after {len(computed)} results and {len(sent)} sends were acknowledged")

    node = Node(d, start=False)
    try:
        logged = {(p, i): s for p, i, s in node.store.query("SELECT pid, id, status FROM log")}
        missing = [x for x in sent if x not in logged]
        assert not missing, f"{len(missing)} acknowledged sends are not in the log"
        lost = [x for x in computed if logged.get(x, 0) == 0]
        assert not lost, f"{len(lost)} acknowledged results are not in the log"
        for pid in (a, b):
            verify_chain(pid, node.log_rows(pid))
    finally:
        node.close()

    node = Node(d)   # restart: pending messages are computed and the game runs to its end
    try:
        deadline = time.monotonic() + 40
        while node.store.query("SELECT COUNT(*) FROM log WHERE status=0")[0][0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert node.store.query("SELECT COUNT(*) FROM log WHERE status=0")[0][0] == 0
        limit = TOTAL // 2 + 1
        for pid, expected in ((b, limit), (a, limit - 1)):
            verify_chain(pid, node.log_rows(pid))
            balls = node.store.query(
                "SELECT COUNT(*) FROM log WHERE pid=? AND status=1 AND msg LIKE '%\"Action\",\"value\":\"P_ng\"%'",
                (pid,))[0][0]
            assert balls == expected, "a ball was lost or applied twice across the crash"
            live = node.cu.live.get(pid) or node.cu.runtime(pid)   # the node's own runtime, still running
            live_digest = hashlib.sha256(live.state_dump().encode("utf-8", "surrogateescape")).hexdigest()
            clean_digest, n = _replay_digest(node, pid)
            assert n >= expected
            assert live_digest == clean_digest, f"process {pid} differs from a clean replay of its log"
    finally:
        node.close()
