"""Logged messages carry a checksum (issue 11 item 13): a same-size edit inside a logged row passes SQLite's
own integrity check, but a replay refuses the row with a clear error instead of computing a different state."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aos_py.client import Client, load_wallet

ALICE = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)


def test_a_tampered_row_is_refused_on_replay_and_other_processes_go_on(tmp_path):
    d = tmp_path / "node"
    c = Client.open(d, services=False)
    victim = c.spawn(ALICE, name="victim")
    other = c.spawn(ALICE, name="other")
    mid = c.send(ALICE, victim, data="Balance = 1000", tags=[("Action", "Eval")])
    c.wait_result(victim, mid)
    c.close()

    db = sqlite3.connect(str(d / "node.db"))
    (msg,) = db.execute("SELECT data FROM log WHERE id=?", (mid,)).fetchone()
    db.execute("UPDATE log SET data=? WHERE id=?", (bytes(msg).replace(b"1000", b"9999"), mid))   # same size
    db.commit()
    assert db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    db.close()

    c = Client.open(d, services=False)
    try:
        res = c.eval(ALICE, victim, "return Balance")
        assert "does not match its checksum" in res["Error"] and "changed outside aos-py" in res["Error"]
        assert c.eval(ALICE, other, "return 40 + 2")["Output"]["data"] == "42"
    finally:
        c.close()


def test_untampered_logs_replay_as_before(tmp_path):
    d = tmp_path / "node"
    c = Client.open(d, services=False)
    pid = c.spawn(ALICE, name="p")
    for i in range(5):
        c.eval(ALICE, pid, f"X = (X or 0) + {i}")
    c.close()
    c = Client.open(d, services=False)
    try:
        assert c.eval(ALICE, pid, "return X")["Output"]["data"] == "10"
    finally:
        c.close()
