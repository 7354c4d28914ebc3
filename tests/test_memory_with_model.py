"""Memory-limit errors in a process that has a model loaded (issue 11 item 4): the sequence that used to
crash the host (lupa segfault a few messages later) now gives Error results and the process goes on, its
generation context rebuilt from the journal after each failed message. The crash came from the llama
host calling Lua callbacks (Llama.onLog) from inside a host call; the host now hands its log events back
to Lua with each call's result."""

from __future__ import annotations

from pathlib import Path

import pytest

from aos_py.client import Client, load_wallet
from aos_py.inference.demo import demo_model_path
from aos_py.resources import wasm_path

pytestmark = pytest.mark.skipif(not wasm_path().is_file(), reason="wasm/llama.wasm is not built (run `make wasm`)")
ALICE = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)


def test_memory_errors_with_a_model_loaded_do_not_crash_the_host(tmp_path):
    c = Client.open(tmp_path / "node", services=False)
    try:
        model = c.add_data(demo_model_path())
        pid = c.spawn(ALICE, name="hog")
        # the sequence that crashed the host (the old code died with SIGSEGV in its eleventh message)
        steps = [
            ("Big = string.rep('x', 500 * 1024 * 1024) return #Big", None),
            (f"Llama = require('llama') Llama.logToStderr = false Llama.load('/data/{model}') return 'loaded'",
             None),
            ("Big2 = string.rep('y', 500 * 1024 * 1024) return #Big2", "not enough memory"),
            ("local t = {} for i = 1, 1e9 do t[i] = i end return #t", "not enough memory"),
            ("Llama.setPrompt('hello') return Llama.run(5)", None),
            ("return 1 + 1", None),
            ("Big = nil collectgarbage() return 'freed'", None),
            ("Llama.setPrompt('again') return Llama.run(5)", None),
            ("local t = {} for i = 1, 1e9 do t[i] = tostring(i) end return #t", "not enough memory"),
            ("return Llama.run(3)", None),
            ("return 2 + 2", None),
            ("Big = string.rep('x', 500 * 1024 * 1024) return #Big", None),
        ]
        for code, error in steps:
            res = c.eval(ALICE, pid, code, timeout=120)
            if error:
                assert error in res.get("Error", ""), (code, res.get("Error"))
            else:
                assert not res.get("Error"), (code, res["Error"])
        assert c.eval(ALICE, pid, "return #Llama.run(2) >= 0 and 'alive'")["Output"]["data"] == "alive"
    finally:
        c.close()
