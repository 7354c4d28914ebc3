"""The node's socket under careless and hostile clients (issue 11 item 6): a client that connects and never
logs in, a subscriber that never reads, many open/eval/close cycles and many pending waits must not block
other clients or grow the host's threads and descriptors without bound."""

from __future__ import annotations

import os
import socket
import threading
import time
from multiprocessing.connection import Client as Connect
from pathlib import Path

import pytest

from aos_py.client import Client, NotFoundError, load_wallet
from aos_py.client import backend as backend_mod

ALICE = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)


@pytest.fixture
def host(tmp_path):
    c = Client.open(tmp_path / "node", services=False)
    yield c
    c.close()


def host_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("aos-node-") and t.name != "aos-node")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_client_that_never_logs_in_does_not_block_others(host, monkeypatch):
    monkeypatch.setattr(backend_mod, "HANDSHAKE_SECONDS", 1)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(str(host.data_dir / "node.sock"))           # connects, then says nothing
    try:
        pid = host.spawn(ALICE, name="p")
        t0 = time.monotonic()
        other = Client.open(host.data_dir)                       # a second aos joins over the socket
        try:
            assert not other.hosting
            assert other.eval(ALICE, pid, "return 1 + 1")["Output"]["data"] == "2"
        finally:
            other.close()
        assert time.monotonic() - t0 < 8.0     # (it used to wait for the silent client forever)
    finally:
        silent.close()


def test_a_subscriber_that_never_reads_does_not_stop_live_events_for_others(host, monkeypatch):
    monkeypatch.setattr(backend_mod, "OUTGOING_LIMIT", 50)
    pid = host.spawn(ALICE, name="chatty")
    authkey = (host.data_dir / "node.authkey").read_bytes()
    stuck = Connect(str(host.data_dir / "node.sock"), family="AF_UNIX", authkey=authkey)
    stuck.send((1, "subscribe", (pid,), {}))                   # ... and never reads again
    reader = Client.open(host.data_dir)
    got: list = []
    reader.subscribe(pid, got.append)
    try:
        big = "x" * 60000
        for i in range(60):
            host.eval(ALICE, pid, f"print(string.rep('{big[:10]}', 6000)) return {i}")
        deadline = time.monotonic() + 10
        while len(got) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) >= 60          # every event reached the reading client
        assert host.node is not None and host.eval(ALICE, pid, "return 7")["Output"]["data"] == "7"
    finally:
        reader.close()
        stuck.close()


def test_open_eval_close_cycles_leak_no_threads_or_descriptors(host):
    pid = host.spawn(ALICE, name="p")
    for _ in range(5):                                          # warm up pools and caches
        c = Client.open(host.data_dir)
        c.eval(ALICE, pid, "return 1")
        c.close()
    time.sleep(0.3)
    threads, fds = host_threads(), open_fds()
    for _ in range(100):
        c = Client.open(host.data_dir)
        c.eval(ALICE, pid, "return 1")
        c.close()
    deadline = time.monotonic() + 5
    while (host_threads() > threads + 4 or open_fds() > fds + 4) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_threads() <= threads + 4, (threads, host_threads())
    assert open_fds() <= fds + 4, (fds, open_fds())


def test_many_pending_waits_use_a_bounded_number_of_threads(host):
    pid = host.spawn(ALICE, name="p")
    remote = Client.open(host.data_dir)
    errors: list = []

    def wait() -> None:
        try:
            remote.wait_result(pid, "M" * 43, timeout=3)
        except NotFoundError:
            errors.append(1)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    before = host_threads()
    workers = [threading.Thread(target=wait) for _ in range(400)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    peak = host_threads()
    assert peak - before <= backend_mod.WAIT_THREADS + backend_mod.CALL_THREADS + 4, (before, peak)
    # meanwhile ordinary calls are answered: not queued behind the waits
    assert remote.eval(ALICE, pid, "return 5")["Output"]["data"] == "5"
    assert len(errors) < 400, "the eval was answered only after every wait had ended"
    for w in workers:
        w.join(30)
    remote.close()
    assert len(errors) == 400 and all(e == 1 for e in errors)
