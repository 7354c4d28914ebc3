"""The host-call journal (aos_py/runtime/journal.py): a replay answers `llama` calls from the log instead of
running inference again, leaves the process's Lua state as it was, and rebuilds the engine only when a live
call needs it. Also on the node: a herd worker with jobs behind it comes back after a restart without
generating anything again.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from aos_py.inference.demo import demo_model_path
from aos_py.resources import wasm_path
from aos_py.runtime import ProcessRuntime

pytestmark = pytest.mark.skipif(not wasm_path().is_file(), reason="wasm/llama.wasm is not built (run `make wasm`)")

PID = "JOURNAL-PROCESS-ID-00000000000000000000000"
OWNER = "OWNER-ADDRESS-0000000000000000000000000000"
ENV = {"Process": {"Id": PID, "Owner": OWNER, "Tags": [{"name": "Name", "value": "journal"}]}}
PROMPT = "<|system|>\nTell a joke on the given topic, on one line<|end|>\n<|user|>\nTopic: %s<|end|>\n<|assistant|>\n"


def msg(n: int, code: str | None) -> dict:
    m = {"Id": f"MSG-{n}", "Target": PID, "Owner": OWNER, "From": OWNER, "Module": "M", "Block-Height": "1",
         "Timestamp": 1700000000000 + n, "Tags": [{"name": "Action", "value": "Eval"}] if code is not None
         else list(ENV["Process"]["Tags"])}
    if code is None:
        m["Id"] = PID
    else:
        m["Data"] = code
    return m


SCRIPT = [
    None,
    'Llama = require("llama") Llama.logLevel = 4 Llama.logToStderr = false Llama.load("/data/demo")',
    f'Llama.setPrompt([[{PROMPT % "cats"}]]) A = Llama.run(12) return A',
    'B = Llama.next() Llama.saveState() return B',
    f'Llama.setPrompt([[{PROMPT % "dogs"}]]) C = Llama.run(6) return C',
    'Llama.loadState() D = Llama.run(5) return D',
    'return Llama.load("/data/missing")',                     # an error, journaled as an error
]


def run(rt: ProcessRuntime, journals: list | None = None) -> tuple[list, list]:
    outs, recorded = [], []
    for i, code in enumerate(SCRIPT):
        res = rt.handle(msg(i, code), ENV, journals[i] if journals else None)
        outs.append(res.get("Error") or (res["Output"].get("data") if isinstance(res["Output"], dict) else ""))
        recorded.append(rt.last_journal)
    return outs, recorded


def files(data_id: str):
    return str(demo_model_path()) if data_id == "demo" else None


def test_replay_answers_from_the_journal_without_running_the_engine():
    live = ProcessRuntime(data_resolver=files)
    outs, journals = run(live)
    assert journals[0] is None and journals[2] and journals[2][0][0] == "set_prompt"
    assert "no data item" in outs[-1]
    replayed = ProcessRuntime(data_resolver=lambda i: (_ for _ in ()).throw(AssertionError("no file may be opened")))
    outs2, journals2 = run(replayed, journals)
    assert outs2 == outs
    assert journals2 == journals                               # the log would be written the same again
    assert replayed._llama_host.engine is None                # no model was loaded, no token generated
    assert replayed.state_dump() == live.state_dump()          # Llama.log lists included (callbacks played back)
    live.close()
    replayed.close()


def test_after_a_replay_the_engine_is_rebuilt_for_the_context_in_use():
    live = ProcessRuntime(data_resolver=files)
    _outs, journals = run(live)
    replayed = ProcessRuntime(data_resolver=files)
    run(replayed, journals)
    # continuing the restored context (saved state, then more tokens) gives what the live process gives
    cont = "Llama.loadState() return Llama.run(4)"
    a = live.handle(msg(50, cont), ENV)["Output"]["data"]
    b = replayed.handle(msg(50, cont), ENV)["Output"]["data"]
    assert a == b and a
    more = "return Llama.run(3)"
    assert live.handle(msg(51, more), ENV)["Output"]["data"] == replayed.handle(msg(51, more), ENV)["Output"]["data"]
    live.close()
    replayed.close()


def test_a_new_prompt_after_a_replay_does_not_regenerate_the_old_context():
    live = ProcessRuntime(data_resolver=files)
    _outs, journals = run(live)
    replayed = ProcessRuntime(data_resolver=files)
    run(replayed, journals)
    calls = []
    host = replayed._llama_host
    for name in ("set_prompt", "next", "run", "load"):
        orig = getattr(host, name)
        setattr(host, name, lambda *a, _o=orig, _n=name: (calls.append(_n), _o(*a))[1])
    code = f'Llama.setPrompt([[{PROMPT % "llamas"}]]) return Llama.run(5)'
    assert replayed.handle(msg(60, code), ENV)["Output"]["data"] == live.handle(msg(60, code), ENV)["Output"]["data"]
    # the model, the saved state (still usable by loadState: its prompt, run(12), next), then the new prompt;
    # the dogs context and the run(5) after loadState are not generated again
    assert calls == ["load", "set_prompt", "run", "next", "set_prompt", "run"]
    live.close()
    replayed.close()


def test_a_herd_worker_comes_back_after_a_restart_without_generating_again(tmp_path):
    from aos_py.client import Client, load_wallet

    alice = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)
    src = (Path(__file__).resolve().parent.parent / "packages" / "@sam" / "Llama-Herder" / "main.lua").read_text()
    c = Client.open(tmp_path / "node")
    pid = c.spawn(alice, name="user")
    c.faucet(pid, 5)
    c.eval(alice, pid, 'package.loaded["@sam/Llama-Herder"] = (function()\n' + src + '\nend)()')
    c.eval(alice, pid, 'N = 0 L = require("@sam/Llama-Herder") for i = 1, 30 do '
                       'L.run("Tell a joke about cats", 6, function(r) N = N + 1 end) end')

    def count() -> int:
        return int(c.eval(alice, pid, "return N")["Output"]["data"])
    deadline = time.monotonic() + 60
    while count() < 30 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert count() == 30
    workers = c.services()["workers"]
    c.close()

    c = Client.open(tmp_path / "node")
    try:
        node = c.node
        deadline = time.monotonic() + 30
        while not all(node.cu.is_live(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.02)      # the node rebuilds its services in the background after a start
        node.offload.wait_idle()
        for w in workers:
            rt = node.cu.runtime(w)
            engine = rt._llama_host.engine
            # the model is loaded again (warm-up), but none of the 30 jobs was generated again
            assert engine is not None and engine.n_past() == 0
        c.eval(alice, pid, 'L.run("Tell a joke about dogs", 6, function(r) N = N + 1 Last = r end)')
        deadline = time.monotonic() + 30
        while count() < 31 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert count() == 31
        assert c.eval(alice, pid, "return Last")["Output"]["data"]
    finally:
        c.close()
