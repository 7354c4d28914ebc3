"""A stranger's malformed message does not make the node rebuild the process (issue 11 item 3, in part):
a message that fails before it can change anything lasting (here: `Content-Type: application/json` with
Data that is not JSON, which aos decodes before any handler) is an Error, and the runtime goes on as it
was instead of being thrown away and replayed from the whole log for the next message."""

from __future__ import annotations

from pathlib import Path

from aos_py.client import Client, load_wallet

ALICE = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)
STRANGER = load_wallet(Path(__file__).parent / "vectors" / "wallet-b.json", create=False)


def test_malformed_json_from_a_stranger_costs_no_replay(tmp_path):
    c = Client.open(tmp_path / "node", services=False)
    try:
        pid = c.spawn(ALICE, name="busy")
        for _ in range(50):
            c.eval(ALICE, pid, "Count = (Count or 0) + 1")
        node = c.node
        replayed = node.cu.replayed
        for _ in range(20):
            mid = c.send(STRANGER, pid, data="{not json", tags=[("Content-Type", "application/json")])
            assert c.wait_result(pid, mid).get("Error")
            assert c.eval(ALICE, pid, "return Count")["Output"]["data"] == "50"
        assert node.cu.replayed == replayed          # the process was never rebuilt from its log
        live = node.cu.runtime(pid).state_dump()
        node.cu.discard(pid)
        assert node.cu.runtime(pid).state_dump() == live   # and the log still replays to the same state
    finally:
        c.close()
