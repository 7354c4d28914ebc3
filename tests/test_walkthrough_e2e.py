"""The seed's walk-through in a real terminal: the `aos` program in a pty on a fresh data dir, typed as a user
types it: .faucet, .load-blueprint apm, APM.install("@sam/Llama-Herder"), Llama.run with a callback, the
wAR balance down by exactly the fee; then the Llama Joker example; then `aos herd status` and `aos apm list`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_repl_e2e import ROOT, Aos, script

from aos_py.resources import wasm_path

pytest.importorskip("pexpect", reason="pexpect is needed to drive aos in a pseudo-terminal")
pytestmark = pytest.mark.skipif(not wasm_path().is_file(), reason="wasm/llama.wasm is not built (run `make wasm`)")

FEE = 1 + (6 + 20) * 1      # base + (words of "What is the meaning of life?" + 20 tokens) * per-token fee


def test_walkthrough_in_a_terminal(tmp_path: Path):
    home = tmp_path
    aos = Aos(home)
    child = aos.child

    def step(line: str, *expected: str) -> None:
        """Type a line and wait for each expected text in turn (output may come before or after the prompt)."""
        child.sendline(line)
        for pattern in expected:
            child.expect(pattern, timeout=60)

    try:
        step(".faucet", "1 wAR sent to", "Credit-Notice")       # the token's notice arrives as a live message
        step(".load-blueprint apm", "📦 Loading APM...", r"✅ APM client v2\.1\.0 loaded")
        step('APM.install("@sam/Llama-Herder")', "📦 Download requested for @sam/Llama-Herder",
             r"✅ Downloaded @sam/Llama-Herder@\d+\.\d+\.\d+")
        step('Llama = require("@sam/Llama-Herder")')
        step('return type(Llama.run) .. " " .. apm.installed["@sam/Llama-Herder"]', r"function \d+\.\d+\.\d+")
        step('Llama.run("What is the meaning of life?", 20, function(r) print("Herd says: " .. r) end)',
             r"Herd says: \S")
        step('Send({Target = Llama.token, Action = "Balance"})', str(10**12 - FEE))
        step('apm.install("@Sam/x")', "Invalid vendor name")
        step(f'.load {ROOT / "examples" / "llama-joker.lua"}', r"Ok, I think I've got a good one: \S")
        aos.wait_prompt()
    finally:
        aos.close()
    status = script(home, "herd", "status")
    assert status.returncode == 0, status.stderr
    assert "workers  2" in status.stdout and "jobs" in status.stdout
    listing = script(home, "apm", "list")
    assert listing.returncode == 0, listing.stderr
    assert "@sam/Llama-Herder" in listing.stdout and "@apm/apm" in listing.stdout
