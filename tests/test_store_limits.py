"""The store under pressure (issue 11 items 7 and 8): the WAL does not grow without bound while the node
runs, and a full disk is reported as a full disk (nothing lost, no advice to move the database aside)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from aos_py.client import Client, ClientError, load_wallet
from aos_py.node import store as store_mod
from aos_py.node.store import Store, StoreError

ALICE = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)


def test_the_wal_is_truncated_when_it_passes_its_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "WAL_LIMIT", 256 * 1024)
    monkeypatch.setattr(store_mod, "CHECKPOINT_EVERY_S", 0.1)
    d = tmp_path / "node"
    c = Client.open(d, services=False)
    try:
        pid = c.spawn(ALICE, name="busy")
        c.eval(ALICE, pid, 'Handlers.add("n", "Note", function(m) Count = (Count or 0) + 1 end)')
        biggest = 0
        for i in range(800):
            c.send(ALICE, pid, data="x" * 20000, tags=[("Action", "Note")])
            if i % 25 == 0:
                biggest = max(biggest, os.path.getsize(f"{d}/node.db-wal"))
        # 800 commits of 20 KB messages write about 40 MB of WAL; truncated at 256 KB it stays small
        assert biggest < 6 * 1024 * 1024, biggest
        assert c.eval(ALICE, pid, "return Count")["Output"]["data"] == "800"
    finally:
        c.close()


def test_a_full_disk_is_reported_as_such_and_loses_nothing(tmp_path):
    s = Store(tmp_path / "node.db")
    s.transaction([("INSERT INTO meta (key, value) VALUES (?, ?)", ("kept", "yes"))])
    pages = s.query("PRAGMA page_count")[0][0]
    s.db.execute(f"PRAGMA max_page_count={pages + 2}")         # the disk is as good as full
    with pytest.raises(StoreError) as info:
        s.transaction([("INSERT INTO meta (key, value) VALUES (?, ?)", (f"k{i}", "v" * 4000)) for i in range(50)]
                      + [("INSERT INTO meta (key, value) VALUES (?, ?)", ("last", "v"))])
    text = str(info.value)
    assert "full" in text and "nothing" in text.lower()
    assert "move it aside" not in text and "damaged" not in text
    assert s.query("SELECT value FROM meta WHERE key='kept'") == [("yes",)]
    assert s.query("SELECT COUNT(*) FROM meta WHERE key LIKE 'k%'") == [(1,)]   # only 'kept': the batch rolled back
    s.close()


def test_a_read_only_data_dir_gives_a_clear_error(tmp_path, monkeypatch):
    real_connect = sqlite3.connect

    def readonly(path, *a, **kw):      # what SQLite says when the directory or file is not writable
        raise sqlite3.OperationalError("attempt to write a readonly database")
    monkeypatch.setattr(sqlite3, "connect", readonly)
    with pytest.raises(ClientError) as info:
        Client.open(tmp_path / "ro", services=False)
    monkeypatch.setattr(sqlite3, "connect", real_connect)
    text = str(info.value)
    assert "not writable" in text and "move it aside" not in text
