"""The pytest plugin (`aos_node` fixture), and `aos test examples/tests` as the project runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from aos_py.resources import wasm_path

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


def test_entry_point_is_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["entry-points"]["pytest11"] == {"aos-py": "aos_py.testing.pytest_plugin"}


def test_aos_node_fixture(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")      # the same whether or not it is installed
    pytester.makepyfile(
        test_ping='''
        import pytest

        PONG = 'Handlers.add("ping", "Ping", function(m) m.reply({ Action = "Pong", Data = m.Data }) end)'

        def test_ping_pong(aos_node):
            aos_node.spawn_process("pong", PONG, {"On-Boot": "Data"})
            aos_node.spawn_process("sender")
            for i in range(5):
                aos_node.send({"From": "sender", "Target": "pong", "Action": "Ping", "Data": str(i)})
            replies = aos_node.get_all_msgs("sender", {"Action": "Pong"})
            assert [m["Data"] for m in replies] == ["4", "3", "2", "1", "0"]
            assert aos_node.eval("pong", "#Inbox") == 0

        def test_each_test_gets_a_fresh_node(aos_node):
            aos_node.spawn_process("pong")            # no "already exists"
            assert aos_node.processes() == ["pong"]

        def test_token_blueprint(aos_node):
            aos_node.spawn_process("token", blueprints=["token"])
            aos_node.spawn_process("alice")
            aos_node.send({"From": "alice", "Target": "token", "Action": "Balance"})
            assert aos_node.get_last_msg("alice", {"From": "token"})["Balance"] == "0"
        ''',
    )
    result = pytester.runpytest_inprocess("-p", "aos_py.testing.pytest_plugin", "-q")
    result.assert_outcomes(passed=3)


def test_aos_test_runs_the_examples():
    """`aos test examples/tests` from the project root: the token blueprint, ping-pong and the Llama Joker."""
    args = ["examples/tests"]
    if not wasm_path().is_file():        # the joker needs the wasm engine of the herd's workers (`make wasm`)
        args = ["examples/tests/token_spec.lua", "examples/tests/ping_pong_spec.lua"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("AOLITE_MSG_LOG", None)
    proc = subprocess.run([sys.executable, "-m", "aos_py", "test", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = 13 + (5 if args == ["examples/tests"] else 0)
    assert lines[-1] == f"{passed} passed, 0 failed", proc.stdout
