"""Two aos-py nodes, each behind `aos serve` on its own port: the shell of one, pointed at the other by the
environment (MU_URL, CU_URL, GATEWAY_URL, ... as `aos serve` prints them), spawns and evaluates there,
`.load`s a file, lists and dry-runs, and live messages arrive (polled from the CU's /results)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from http_helpers import ROOT, Served, child_env, http

from aos_py.client import Client
from aos_py.node.wallet import Wallet, load_wallet

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive aos in a pseudo-terminal")

VEC = ROOT / "tests" / "vectors"
PROMPT = re.compile(r"remote-proc.*@.*aos-[0-9.]+.*\[Inbox:.*\]")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_shell_of_one_node_drives_another(tmp_path):
    one = Served(tmp_path / "one")
    two = Served(tmp_path / "two")
    wallet = load_wallet(VEC / "wallet-b.json", create=False)     # RSA, as on Arweave
    home = tmp_path / "home"
    home.mkdir()
    env = child_env(**two.env, HOME=str(home), PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm-256color")
    base = ["-m", "aos_py", "--data-dir", str(tmp_path / "one"), "--wallet", str(VEC / "wallet-b.json")]
    lua = tmp_path / "greet.lua"
    lua.write_text('Greeting = "hello from a file"\nprint(Greeting)\n')
    sender = Client.remote(two.url, data_dir=tmp_path / "sender")
    child = None
    try:
        assert one.url != two.url
        child = pexpect.spawn(sys.executable, [*base, "remote-proc"], env=env, cwd=str(home), encoding="utf-8",
                              timeout=30, dimensions=(50, 160))
        child.logfile_read = open(tmp_path / "pty.log", "a", encoding="utf-8")  # noqa: SIM115
        child.expect(r"Your AOS Process: (?:\x1b\[[0-9;]*m)?([A-Za-z0-9_-]{43})")
        pid = child.match.group(1)
        child.expect(PROMPT)
        child.sendline("1 + 41")
        child.expect(r"42\r\n")
        child.expect(PROMPT)
        sender.send(Wallet.generate("ed25519"), pid, data="ping", tags=[("Action", "Ping")])
        child.expect("New Message From", timeout=20)     # live, through /results polling
        child.sendline(f".load {lua}")
        child.expect("hello from a file")
        child.expect(PROMPT)
        child.sendline(".exit")
        child.expect(pexpect.EOF)
        # the process lives on node two only
        assert http("GET", f"{two.url}/processes/{pid}")[0] == 200
        assert http("GET", f"{one.url}/processes/{pid}")[0] == 404
        listed = subprocess.run([sys.executable, *base, "--list"], env=env, capture_output=True, text=True,
                                timeout=60, cwd=str(home))
        assert listed.returncode == 0 and pid in listed.stdout and "remote-proc" in listed.stdout, listed
        dry = subprocess.run([sys.executable, *base, "remote-proc", "--dry-run", "--run", "Greeting = 'changed'; return Greeting"],
                             env=env, capture_output=True, text=True, timeout=60, cwd=str(home))
        assert dry.returncode == 0 and "changed" in ANSI.sub("", dry.stdout), dry
        again = subprocess.run([sys.executable, *base, "remote-proc", "--run", "return Greeting"],
                               env=env, capture_output=True, text=True, timeout=60, cwd=str(home))
        assert again.returncode == 0 and "hello from a file" in ANSI.sub("", again.stdout), again   # the dry-run kept nothing
        assert [p["id"] for p in sender.find_processes(wallet.address)] == [pid]
        # without the environment, an aos on node one's data dir joins the node `aos serve` hosts there
        local = subprocess.run([sys.executable, *base, "local-proc", "--run", "return 6 * 7"],
                               env=child_env(HOME=str(home)), capture_output=True, text=True, timeout=60, cwd=str(home))
        assert local.returncode == 0 and "42" in local.stdout, local
        mine = Client.remote(one.url, data_dir=tmp_path / "sender")
        try:
            assert [p["name"] for p in mine.find_processes(wallet.address)] == ["local-proc"]
        finally:
            mine.close()
    finally:
        if child is not None:
            child.close(force=True)
            child.logfile_read.close()
        sender.close()
        assert one.stop() == 0
        assert two.stop() == 0
