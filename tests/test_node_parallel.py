"""A slow process never holds up the others (aos_py/node/parallel.py): while one process generates text with
the LLM, another answers its Evals at once; each process still sees its own messages one at a time, in
slot order, and a restart replays to the same state.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from aos_py.client import Client, load_wallet
from aos_py.inference.demo import demo_model_path
from aos_py.resources import wasm_path

pytestmark = pytest.mark.skipif(not wasm_path().is_file(), reason="wasm/llama.wasm is not built (run `make wasm`)")

ALICE = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)
PROMPT = "<|system|>\nTell a joke on the given topic, on one line<|end|>\n<|user|>\nTopic: %s<|end|>\n<|assistant|>\n"


def data(res: dict) -> str:
    assert not res.get("Error"), res.get("Error")
    return res["Output"]["data"]


@pytest.fixture
def client(tmp_path):
    c = Client.open(tmp_path / "node", services=False)
    yield c
    c.close()


def test_an_llm_eval_does_not_stall_other_processes(client):
    model = client.add_data(demo_model_path())
    slow = client.spawn(ALICE, name="slow")
    fast = client.spawn(ALICE, name="fast")
    topics = ["cats", "dogs", "llamas", "fish", "birds", "cows", "bees", "owls"] * 3
    code = ('Llama = require("llama") Llama.logLevel = 2 Llama.logToStderr = false '
            f'Llama.load("/data/{model}") local n = 0 '
            'for _, t in ipairs({' + ", ".join(f'"{t}"' for t in topics) + '}) do '
            f'Llama.setPrompt(string.format([[{PROMPT}]], t)) n = n + #Llama.run(40) end return n')
    started, finished = threading.Event(), {}

    def generate() -> None:
        started.set()
        t0 = time.perf_counter()
        finished["chars"] = data(client.eval(ALICE, slow, code, timeout=120))
        finished["seconds"] = time.perf_counter() - t0
    th = threading.Thread(target=generate)
    th.start()
    started.wait()
    time.sleep(0.2)
    latencies = []
    while th.is_alive() and len(latencies) < 20:
        t0 = time.perf_counter()
        assert data(client.eval(ALICE, fast, "return 6 * 7")) == "42"
        latencies.append(time.perf_counter() - t0)
    th.join()
    assert int(finished["chars"]) > 0
    # the generation took a while; the other process answered while it ran, each Eval quickly
    assert len(latencies) >= 3, f"generation took {finished['seconds']:.2f} s, fast evals: {latencies}"
    assert max(latencies) < finished["seconds"] / 2


def test_messages_of_a_busy_process_keep_their_order_and_replay_the_same(tmp_path):
    c = Client.open(tmp_path / "node", services=False)
    pid = c.spawn(ALICE, name="ordered")
    data(c.eval(ALICE, pid, 'Seen = {} Handlers.add("note", "Note", function(m) table.insert(Seen, m.Data) end)'))
    # the slow Eval is scheduled first (send returns once it has its slot), the notes after it
    c.send(ALICE, pid, data="local x = 0 for i = 1, 2000000 do x = x + i end table.insert(Seen, 'eval') return x",
           tags=[("Action", "Eval")])
    for i in range(20):
        c.send(ALICE, pid, data=str(i), tags=[("Action", "Note")])
    deadline = time.monotonic() + 20
    while data(c.eval(ALICE, pid, "return #Seen")) != "21" and time.monotonic() < deadline:
        time.sleep(0.05)
    order = data(c.eval(ALICE, pid, "return table.concat(Seen, ',')"))
    assert order == "eval," + ",".join(str(i) for i in range(20))
    live_dump = c.node.cu.runtime(pid).state_dump()
    c.close()
    c = Client.open(tmp_path / "node", services=False)
    try:
        assert c.node.cu.runtime(pid).state_dump() == live_dump     # the log replays to the same state
        assert data(c.eval(ALICE, pid, "return table.concat(Seen, ',')")) == order
    finally:
        c.close()


def test_recently_used_processes_are_rebuilt_in_the_background_after_a_start(tmp_path):
    c = Client.open(tmp_path / "node", services=False)
    pids = [c.spawn(ALICE, name=f"p{i}") for i in range(3)]
    for pid in pids:
        data(c.eval(ALICE, pid, "X = 1"))
    c.close()
    c = Client.open(tmp_path / "node", services=False)
    try:
        deadline = time.monotonic() + 10
        while not all(c.node.cu.is_live(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(c.node.cu.is_live(p) for p in pids)       # nobody has sent them anything yet
        assert data(c.eval(ALICE, pids[0], "return X")) == "1"
    finally:
        c.close()
