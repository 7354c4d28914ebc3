"""Nobody poses as the node (issue 11 item 9): a user-signed message that claims From-Process = the node's
address is seen as from its signer, so it cannot use the owner-only actions of the node's services (Eval,
Mint) or pass aos's authority trust check. A claim to be another process stays a claim aos refuses."""

from __future__ import annotations

import json
import time
from pathlib import Path

from aos_py.client import Client, load_wallet
from aos_py.node import ans104

ALICE = load_wallet(Path(__file__).parent / "vectors" / "wallet-a.json", create=False)
MALLORY = load_wallet(Path(__file__).parent / "vectors" / "wallet-b.json", create=False)


def forged(c: Client, target: str, claim: str, tags: list[tuple[str, str]], data: str = " ") -> str:
    raw = ans104.build(MALLORY, target=target, tags=[*tags, ("From-Process", claim), ("Data-Protocol", "ao"),
                                                     ("Variant", "ao.TN.1"), ("Type", "Message")],
                       data=data).raw
    return c.submit(raw)


def test_a_user_cannot_pose_as_the_node(tmp_path):
    c = Client.open(tmp_path / "node")
    try:
        node, war = c.authority(), c.services()["war"]
        victim = c.spawn(ALICE, name="victim")
        supply = c.dryrun(war, tags=[("Action", "Total-Supply")])["Messages"][0]["Data"]
        # Mint is for the token's owner (the node); Eval of the token's code likewise
        mid = forged(c, war, node, [("Action", "Mint"), ("Quantity", "1000000000000000"),
                                    ("Recipient", victim)])
        c.wait_result(war, mid)
        mid = forged(c, war, node, [("Action", "Eval")], 'Balances["x"] = "999"')
        res = c.wait_result(war, mid)
        time.sleep(0.3)
        assert c.dryrun(war, tags=[("Action", "Total-Supply")])["Messages"][0]["Data"] == supply
        bals = json.loads(c.dryrun(war, tags=[("Action", "Balances")])["Messages"][0]["Data"])
        assert "x" not in bals and victim not in bals
        assert "Error" not in res or "not trusted" not in str(res)
        # and the message is seen as from its signer
        c.eval(ALICE, victim, "Handlers.add('who', 'Who', function(m) Seen = m.From end)")
        mid = forged(c, victim, node, [("Action", "Who")])
        c.wait_result(victim, mid)
        assert c.eval(ALICE, victim, "return Seen")["Output"]["data"] == MALLORY.address
    finally:
        c.close()


def test_tags_cannot_set_a_messages_own_fields_or_the_process_clock(tmp_path):
    c = Client.open(tmp_path / "node", services=False)
    try:
        pid = c.spawn(ALICE, name="clock")
        c.eval(ALICE, pid, "Handlers.add('t', 'T', function(m) Seen = m.Id .. '|' .. tostring(m.Timestamp) "
                           ".. '|' .. tostring(os.time()) .. '|' .. tostring(m['Block-Height']) end)")
        mid = c.send(MALLORY, pid, tags=[("Action", "T"), ("Id", "FAKE-ID"), ("Timestamp", "1"),
                                         ("Block-Height", "7")])
        c.wait_result(pid, mid)
        seen = c.eval(ALICE, pid, "return Seen")["Output"]["data"].split("|")
        assert seen[0] == mid
        assert seen[1] == seen[2] and int(seen[1]) > 1_600_000_000_000      # the scheduler's time, in ms
        assert seen[3] != "7"
    finally:
        c.close()
