"""Store integrity, cron ticks, and one node shared by several OS processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from aos_py.client import Client, ClientError, RejectedError, load_wallet
from aos_py.node.node import Node
from aos_py.node.store import StoreError

VEC = Path(__file__).parent / "vectors"
ALICE = load_wallet(VEC / "wallet-a.json", create=False)
ROOT = Path(__file__).resolve().parent.parent


def data(res: dict):
    assert "Error" not in res, res.get("Error")
    out = res["Output"]
    return out["data"] if isinstance(out, dict) else out


def test_corrupted_database_page_gives_a_clear_error(tmp_path):
    d = tmp_path / "n"
    c = Client.open(d)
    pid = c.spawn(ALICE)
    for i in range(30):
        c.send(ALICE, pid, data=f"X = {i} .. '{'y' * 200}'", tags=[("Action", "Eval")])
    c.close()
    db = d / "node.db"
    assert not (d / "node.db-wal").exists() or (d / "node.db-wal").stat().st_size == 0
    size = db.stat().st_size
    pages = size // 4096
    assert pages > 4
    with db.open("r+b") as fh:
        fh.seek((pages // 2) * 4096)
        fh.write(os.urandom(4096))      # one whole page of garbage, as a bad sector would leave
    damaged = db.read_bytes()
    with pytest.raises(ClientError, match="damaged or unreadable"):
        Client.open(d)
    assert db.read_bytes() == damaged     # nothing was changed
    with pytest.raises(StoreError, match="damaged or unreadable"):
        Node(d, start=False)


def test_cron_ticks_only_while_monitored(tmp_path):
    c = Client.open(tmp_path / "n")
    try:
        pid = c.spawn(ALICE, cron="1-second")
        data(c.eval(ALICE, pid, "Ticks = 0\nHandlers.add('cron', 'Cron', function(m) Ticks = Ticks + 1 end)"))
        ticks = lambda: int(data(c.dryrun(pid, tags=[("Action", "Eval")], data="Ticks", owner=ALICE.address)))  # noqa: E731
        time.sleep(1.3)
        assert ticks() == 0           # not monitored yet
        c.monitor(pid)
        deadline = time.monotonic() + 5
        while ticks() < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ticks() >= 2
        c.unmonitor(pid)
        time.sleep(0.2)
        stopped = ticks()
        time.sleep(1.5)
        assert ticks() == stopped
        plain = c.spawn(ALICE)
        with pytest.raises(RejectedError, match="without Cron-Interval"):
            c.monitor(plain)
    finally:
        c.close()


def test_bad_cron_interval_is_refused(tmp_path):
    c = Client.open(tmp_path / "n")
    try:
        with pytest.raises(RejectedError, match="invalid Cron-Interval"):
            c.spawn(ALICE, cron="sometimes")
    finally:
        c.close()


CHILD = textwrap.dedent("""
    import sys, time
    from aos_py.client import Client, load_wallet
    c = Client.open(sys.argv[1])
    w = load_wallet(sys.argv[2], create=False)
    print("hosting" if c.hosting else "connected", flush=True)
    if sys.argv[3] == "eval":
        print(c.eval(w, sys.argv[4], "Shared = (Shared or 0) + 1; return Shared")["Output"]["data"], flush=True)
        c.close()
    else:
        pid = c.spawn(w, name="from-host")
        print(pid, flush=True)
        time.sleep(60)
""")


def _child(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_second_os_process_shares_the_node(tmp_path):
    d = tmp_path / "n"
    c = Client.open(d)
    try:
        pid = c.spawn(ALICE)
        p = _child(str(d), str(VEC / "wallet-a.json"), "eval", pid)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out.split() == ["connected", "1"]
        assert data(c.eval(ALICE, pid, "Shared")) == "1"
    finally:
        c.close()


def test_connected_client_takes_over_when_the_host_dies(tmp_path):
    d = tmp_path / "n"
    host = _child(str(d), str(VEC / "wallet-a.json"), "host")
    try:
        assert host.stdout.readline().strip() == "hosting"
        pid = host.stdout.readline().strip()
        c = Client.open(d)
        assert not c.hosting
        events = []
        c.subscribe(pid, events.append)
        assert data(c.eval(ALICE, pid, "Name")) == "from-host"
        deadline = time.monotonic() + 5
        while not events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events, "the host never delivered the event of the first eval"
        before = len(events)
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=10)
        assert data(c.eval(ALICE, pid, "1 + 1")) == "2"
        assert c.hosting
        deadline = time.monotonic() + 5
        while len(events) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(events) > before      # the subscription moved over with the node
        c.close()
    finally:
        if host.poll() is None:
            host.kill()


@pytest.mark.parametrize("text, seconds", [("1-second", 1), ("10-minutes", 600), ("2-hours", 7200), ("1-day", 86400)])
def test_cron_intervals(text, seconds):
    from aos_py.node.cron import parse_interval

    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "0-seconds", "5-blocks", "minutes", "-1-second"])
def test_bad_cron_intervals(text):
    from aos_py.node.cron import parse_interval

    with pytest.raises(ValueError, match="invalid Cron-Interval"):
        parse_interval(text)
