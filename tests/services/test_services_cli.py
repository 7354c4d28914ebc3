"""The services from the command line, as a user runs them: `aos faucet`, `aos herd status | use | --workers`,
`aos apm publish DIR | list`, with the global flags before or after the subcommand; bad input refused clearly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_repl_e2e import aos_env, script  # noqa: E402

from aos_py.inference import gguf_models as gm  # noqa: E402
from aos_py.resources import wasm_path  # noqa: E402

pytestmark = pytest.mark.skipif(not wasm_path().is_file(), reason="wasm/llama.wasm is not built (run `make wasm`)")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    h = tmp_path_factory.mktemp("clihome")
    res = script(h, "--run", "return 1")          # makes the wallet and the process "default"
    assert res.returncode == 0, res.stderr
    return h


def aos(home: Path, *args: str):
    import subprocess

    return subprocess.run([sys.executable, "-m", "aos_py", *args], text=True, capture_output=True,
                          env=aos_env(home), cwd=str(home), timeout=120)


def flags(home: Path) -> list[str]:
    return ["--data-dir", str(home / "node"), "--wallet", str(home / "wallet.json")]


def test_faucet_credits_the_default_process(home):
    res = aos(home, "faucet", "2.5", *flags(home))
    assert res.returncode == 0, res.stderr
    assert "💧 2.5 wAR sent to" in res.stdout and "(balance: 2.5 wAR)" in res.stdout
    res = aos(home, *flags(home), "faucet")                 # global flags first, default amount 1
    assert res.returncode == 0, res.stderr
    assert "(balance: 3.5 wAR)" in res.stdout


def test_faucet_refuses_bad_input_and_changes_nothing(home):
    for amount in ("-1", "abc", "0", "0.0000000000001"):
        res = aos(home, "faucet", amount, *flags(home))
        assert res.returncode == 1 and "invalid wAR amount" in res.stderr, (amount, res.stderr)
    res = aos(home, "faucet", "1", "--process", "nosuchname", *flags(home))
    assert res.returncode == 1 and "no process named 'nosuchname'" in res.stderr
    res = script(home, "--run", "return 1")
    before = aos(home, "faucet", "1", *flags(home)).stdout
    assert "(balance: 4.5 wAR)" in before      # 3.5 from the test above, then this 1: nothing was added by errors


def test_herd_status_workers_and_use(home, tmp_path):
    res = aos(home, "herd", "status", *flags(home))
    assert res.returncode == 0, res.stderr
    assert "workers  2" in res.stdout and "engine   wasm" in res.stdout and "idle" in res.stdout
    res = aos(home, *flags(home), "herd", "--workers", "3")
    assert res.returncode == 0, res.stderr
    assert "The herd has 3 workers." in res.stdout and "workers  3" in res.stdout
    res = aos(home, "herd", "--workers", "0", *flags(home))
    assert res.returncode == 1 and "1 to 32 workers" in res.stderr
    model = tmp_path / "tiny.gguf"
    gm.write_random_model(model, seed=7)
    added = aos(home, "model", "add", str(model), *flags(home))
    assert added.returncode == 0, added.stderr
    mid = added.stdout.strip().splitlines()[-1]
    res = aos(home, "herd", "use", mid, *flags(home))
    assert res.returncode == 0, res.stderr
    assert "The herd now serves" in res.stdout and mid in res.stdout
    res = aos(home, "herd", "use", "X" * 43, *flags(home))
    assert res.returncode == 1 and "no model" in res.stderr


def test_apm_publish_and_list(home, tmp_path):
    pkg = tmp_path / "greeter"
    pkg.mkdir()
    (pkg / "main.lua").write_text('return { hello = function(n) return "hello " .. n end }\n')
    (pkg / "README.md").write_text("# greeter\n")
    manifest = {"vendor": "@my-vendor", "name": "greeter", "version": "1.0.0", "description": "says hello",
                "main": "main.lua", "readme": "README.md", "dependencies": {}, "license": "MIT"}
    (pkg / "manifest.json").write_text(json.dumps(manifest))
    res = aos(home, "apm", "publish", str(pkg), *flags(home))
    assert res.returncode == 0, res.stderr
    assert "🎉 Published @my-vendor/greeter@1.0.0" in res.stdout
    res = aos(home, "apm", "publish", str(pkg), *flags(home))          # the same again: nothing to do
    assert res.returncode == 0 and "already published" in res.stdout
    (pkg / "main.lua").write_text('return { hello = function(n) return "hi " .. n end }\n')
    res = aos(home, "apm", "publish", str(pkg), *flags(home))          # changed, same version: not newer
    assert res.returncode == 1 and "not newer" in res.stderr
    (pkg / "manifest.json").write_text('{"vendor": "@my-vendor", "name": "greeter"')      # malformed
    res = aos(home, "apm", "publish", str(pkg), *flags(home))
    assert res.returncode == 1 and "manifest.json" in res.stderr
    res = aos(home, *flags(home), "apm", "list")
    assert res.returncode == 0, res.stderr
    assert "@my-vendor/greeter" in res.stdout and "@sam/Llama-Herder" in res.stdout
    # and a process installs it from the registry
    out = script(home, "--run", 'apm.install("@my-vendor/greeter")')
    assert out.returncode == 0, out.stderr
