"""`require("llama")` inside a process: aos-llama's Lua API through the runtime, and the bad-input checks."""

from __future__ import annotations

import importlib.util

import pytest

from aos_py.inference import gguf_models as gm
from aos_py.resources import wasm_path
from aos_py.runtime import ProcessRuntime

PID = "LLAMA-PROCESS-ID-000000000000000000000000"
OWNER = "OWNER-ADDRESS-0000000000000000000000000000"
ENV = {"Process": {"Id": PID, "Owner": OWNER, "Tags": [{"name": "Name", "value": "worker"}]}}

KINDS = [
    pytest.param("wasm", marks=pytest.mark.skipif(not wasm_path().is_file(),
                                                  reason="wasm/llama.wasm is not built (run `make wasm`)")),
    pytest.param("native", marks=pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                                    reason="llama-cpp-python (extra 'native') is not installed")),
]


class Process:
    """A booted aos process whose /data/<id> mounts are the files in `files`."""

    def __init__(self, kind: str, files: dict[str, str]) -> None:
        self.files = files
        self.rt = ProcessRuntime(data_resolver=lambda i: files.get(i), llama_engine=kind)
        self.n = 0
        self.rt.handle(self._msg(None, None), ENV)

    def _msg(self, code: str | None, action: str | None = "Eval") -> dict:
        self.n += 1
        m = {"Id": f"MSG-{self.n}", "Target": PID, "Owner": OWNER, "From": OWNER, "Module": "MODULE",
             "Block-Height": "1", "Timestamp": 1700000000000 + self.n,
             "Tags": [{"name": "Action", "value": action}] if action else list(ENV["Process"]["Tags"])}
        if code is not None:
            m["Data"] = code
        if action is None:
            m["Id"] = PID
        return m

    def eval(self, code: str) -> dict:
        return self.rt.handle(self._msg(code), ENV)

    def ok(self, code: str) -> str:
        res = self.eval(code)
        assert not res.get("Error"), res.get("Error")
        out = res["Output"]
        return out["data"] if isinstance(out, dict) else out

    def error(self, code: str) -> str:
        res = self.eval(code)
        assert res.get("Error"), f"expected an error from {code!r}, got {res.get('Output')}"
        return res["Error"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("models")
    return {
        "MODEL": str(gm.write_random_model(d / "m.gguf", "llama", "spm", "Q8_0", n_ctx=256, seed=2)),
        "PHI3": str(gm.write_random_model(d / "p.gguf", "phi3", "spm", "Q4_K", n_ctx=256, seed=2)),
        "TRUNC": str(gm.write_truncated_model(d / "t.gguf", n_layer=1)),
        "ARCH": str(gm.write_unknown_arch_model(d / "a.gguf")),
        "TYPE": str(gm.write_unknown_type_model(d / "y.gguf")),
    }


@pytest.mark.parametrize("kind", KINDS)
def test_api_shape_and_generation(kind: str, models) -> None:
    p = Process(kind, models)
    assert p.ok("local L = require('llama'); return tostring(L == Llama) .. ' ' .. Llama.logLevel .. ' ' "
                ".. tostring(Llama.logToStderr) .. ' ' .. type(Llama.log.debug)") == "true 5 true table"
    assert "no model loaded" in p.ok("return Llama.info()")
    assert p.ok("Llama.load('/data/MODEL'); return Llama.info()").find(kind) >= 0
    text = p.ok("Llama.setPrompt('Hello world'); return Llama.run(10)")
    assert len(text) > 0
    pieces = p.ok("Llama.setPrompt('Hello world'); local t = {} for i = 1, 10 do t[i] = Llama.next() end "
                  "return table.concat(t)")
    assert pieces == text, "next() x10 and run(10) give the same text (greedy)"
    assert p.ok("Llama.setPrompt('Hello world'); Llama.add(' and more'); return type(Llama.run(3))") == "string"
    assert p.ok("return Llama.run(0)") == ""


@pytest.mark.parametrize("kind", KINDS)
def test_state_snapshot(kind: str, models) -> None:
    p = Process(kind, models)
    p.ok("Llama = require('llama'); Llama.load('/data/PHI3')")
    assert p.ok("return tostring(Llama.loadState())") == "false"
    assert p.ok("Llama.setPrompt('You are a judge.'); return tostring(Llama.saveState())") == "true"
    a = p.ok("return Llama.run(8)")
    assert p.ok("Llama.add('noise noise'); Llama.loadState(); return Llama.run(8)") == a
    assert p.ok("Llama.clearState(); return tostring(Llama.loadState())") == "false"


@pytest.mark.parametrize("kind", KINDS)
def test_logging_levels_and_custom_handlers(kind: str, models) -> None:
    p = Process(kind, models)
    p.ok("Llama = require('llama'); Llama.logLevel = 4; Llama.load('/data/MODEL'); Llama.setPrompt('hi')")
    assert p.ok("return #Llama.log.debug .. ' ' .. tostring(#Llama.log.info > 0)") == "0 true"
    p.ok("Seen = {}; Llama.onLog = function(level, text) Seen[#Seen + 1] = level end; "
         "Dots = 0; Llama.onProgress = function(p) Dots = Dots + 1 end")
    p.ok("Llama.logLevel = 5; Llama.load('/data/MODEL'); Llama.setPrompt('hello')")
    assert p.ok("return tostring(#Seen > 0) .. ' ' .. tostring(Dots > 0)") == "true true"


BAD = [
    ("Llama.load('/data/TRUNC')", "cannot load /data/TRUNC: the file is truncated"),
    ("Llama.load('/data/ARCH')", "architecture 'nosucharch'"),
    ("Llama.load('/data/TYPE')", r"unknown tensor type \(ggml type id 200\)"),
    ("Llama.load('/data/MISSING')", "cannot load /data/MISSING: no data item with id MISSING"),
    ("Llama.load('/etc/passwd')", "needs a /data/<id> path"),
    ("Llama.load(42)", "expected a string, got number"),
    ("Llama.setPrompt(string.rep('hello ', 400))", "the prompt is 40[0-9] tokens but the context holds 256"),
    ("Llama.run(-1)", "n must be >= 0"),
    ("Llama.run('many')", "whole number of tokens"),
]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_gives_clear_lua_errors_and_the_process_survives(kind: str, models) -> None:
    import re

    p = Process(kind, models)
    p.ok("Llama = require('llama'); Llama.load('/data/MODEL'); Llama.setPrompt('Hello world')")
    expected = p.ok("return Llama.run(6)")
    for code, message in BAD:
        err = p.error(code)
        assert re.search(message, err), f"{code}: {err}"
        assert "Traceback" not in err and "File \"" not in err
        assert "[string \"llama\"]" not in err, "the error points at the caller, not inside llama.lua"
    # the earlier model is still loaded and answers the same
    assert p.ok("Llama.setPrompt('Hello world'); return Llama.run(6)") == expected


@pytest.mark.parametrize("kind", KINDS)
def test_calls_before_load_are_clear_errors(kind: str, models) -> None:
    p = Process(kind, models)
    assert "no model is loaded" in p.error("Llama = require('llama'); Llama.setPrompt('hi')")
    assert "no model is loaded" in p.error("return Llama.next()")
    assert p.ok("return 1 + 1") == "2"


def test_unknown_engine_kind_is_a_clear_error(models) -> None:
    p = Process("gpu9000", models)
    err = p.error("Llama = require('llama')")
    assert "unknown llama engine 'gpu9000' configured" in err
    assert p.ok("return 6 * 7") == "42", "the process survives"


def test_engine_kind_comes_from_the_environment(models, monkeypatch) -> None:
    monkeypatch.setenv("AOS_PY_LLAMA_ENGINE", "native")
    assert ProcessRuntime().llama_engine == "native"
    assert ProcessRuntime(llama_engine="wasm").llama_engine == "wasm", "an explicit choice wins"
    monkeypatch.setenv("AOS_PY_LLAMA_ENGINE", "gpu9000")
    p = Process(None, models)     # type: ignore[arg-type] - no explicit kind: the environment decides
    assert "unknown llama engine 'gpu9000' configured" in p.error("Llama = require('llama')")
    monkeypatch.delenv("AOS_PY_LLAMA_ENGINE")
    assert ProcessRuntime().llama_engine == "wasm"


@pytest.mark.parametrize("kind", KINDS)
def test_joker_flow_with_the_demo_model(kind: str, models) -> None:
    """The Llama Joker's call: Phi-3 prompt, run(40); the answer ends at <|end|> and next() then gives nil."""
    from aos_py.inference.demo import demo_model_path

    p = Process(kind, {**models, "DEMO": str(demo_model_path())})
    p.ok("Llama = require('llama'); Llama.logLevel = 4; Llama.load('/data/DEMO')")
    prompt = ("<|system|>\\nTell a joke on the given topic, on one line<|end|>\\n<|user|>\\nTopic: llamas<|end|>\\n"
              "<|assistant|>\\n")
    joke = p.ok(f"Llama.setPrompt('{prompt}'); return Llama.run(40)")
    assert "llama" in joke.lower() and "\n" not in joke and "<|end|>" not in joke, joke
    assert p.ok("return tostring(Llama.next())") == "nil", "generation has ended"
    assert p.ok("return Llama.run(5)") == "", "run after the end gives the empty string"
