"""One memory budget for all of a node's processes (issue 11 item 11): processes that each hold a big heap
cannot together take the host's memory; idle ones are evicted (and rebuilt from their log when needed),
and a process that would pass what is left gets a memory error that says so, not the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from aos_py.client import Client, load_wallet
from aos_py.node import cu as cu_mod

ALICE = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)
MB = 1 << 20


def value(c: Client, pid: str, code: str) -> str:
    res = c.eval(ALICE, pid, code)
    assert not res.get("Error"), res["Error"]
    return res["Output"]["data"]


def test_processes_share_one_memory_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("AOS_PY_NODE_MEMORY", "160m")
    c = Client.open(tmp_path / "node", services=False)
    try:
        node = c.node
        assert node.cu.memory_cap == 160 * MB
        pids = [c.spawn(ALICE, name=f"big{i}") for i in range(4)]
        for i, pid in enumerate(pids):
            value(c, pid, f"Big = string.rep('{i}', 60 * 1024 * 1024) return #Big")
            assert node.cu.memory_in_use() <= 160 * MB + 8 * MB
        # every process still has its state (evicted ones are rebuilt from their logs)
        for i, pid in enumerate(pids):
            assert value(c, pid, "return Big:sub(1, 1) .. #Big") == f"{i}{60 * 1024 * 1024}"
            assert node.cu.memory_in_use() <= 160 * MB + 8 * MB
        # one process alone cannot take more than the node's budget
        res = c.eval(ALICE, pids[0], "Bigger = string.rep('x', 200 * 1024 * 1024) return #Bigger")
        assert "not enough memory" in res["Error"] and "share a memory budget" in res["Error"]
        assert value(c, pids[0], "return #Big") == str(60 * 1024 * 1024)
    finally:
        c.close()


def test_the_budget_setting_is_read_and_checked(monkeypatch):
    monkeypatch.setenv("AOS_PY_NODE_MEMORY", "512m")
    assert cu_mod.node_memory_cap() == 512 * MB
    monkeypatch.setenv("AOS_PY_NODE_MEMORY", "0")
    assert cu_mod.node_memory_cap() == 0
    monkeypatch.setenv("AOS_PY_NODE_MEMORY", "lots")
    with pytest.raises(ValueError, match="AOS_PY_NODE_MEMORY"):
        cu_mod.node_memory_cap()
    monkeypatch.delenv("AOS_PY_NODE_MEMORY")
    assert cu_mod.node_memory_cap() == cu_mod.NODE_MEMORY_DEFAULT
