"""Blueprints (lua/blueprints/*.lua) run in real aos processes that exchange messages.

A tiny in-test router passes each outbox message to its target process, the way a node's mu would,
so token transfers, chat rooms and staking are checked end to end at the process level.
"""

from __future__ import annotations

import json
import re
from collections import deque

import pytest

from aos_py.repl.commands import blueprint_source
from aos_py.resources import lua_dir
from aos_py.runtime import ProcessRuntime

OWNER = "O" * 43
AUTHORITY = "A" * 43
ANSI = re.compile(r"\x1b\[[0-9;]*m")

needs_bint = pytest.mark.skipif(not (lua_dir() / "bint.lua").exists(),
                                reason="lua/bint.lua (module .bint) is not in this checkout; token maths needs it")


class Net:
    """Processes by id, and a queue that delivers every outbox message to its target."""

    def __init__(self) -> None:
        self.procs: dict[str, tuple[ProcessRuntime, dict]] = {}
        self.n = 0
        self.height = 1000
        self.log: list[tuple[str, dict, dict]] = []  # (target, message, result)

    def spawn(self, pid: str, name: str) -> str:
        env = {"Process": {"Id": pid, "Owner": OWNER, "Tags": [{"name": "Name", "value": name},
                                                                {"name": "Authority", "value": AUTHORITY}]}}
        rt = ProcessRuntime()
        self.procs[pid] = (rt, env)
        self._handle(pid, self._msg(pid, OWNER, OWNER, [("Name", name), ("Authority", AUTHORITY)], None, pid))
        return pid

    def close(self) -> None:
        for rt, _ in self.procs.values():
            rt.close()

    def _msg(self, target, sender, owner, tags, data, mid=None) -> dict:
        self.n += 1
        m = {"Id": mid or f"MSG-{self.n}", "Target": target, "From": sender, "Owner": owner, "Module": "MOD",
             "Block-Height": str(self.height), "Timestamp": 1700000000000 + self.n * 1000,
             "Tags": [{"name": k, "value": v} for k, v in tags]}
        if data is not None:
            m["Data"] = data
        return m

    def _handle(self, pid: str, m: dict) -> dict:
        rt, env = self.procs[pid]
        res = rt.handle(m, env)
        self.log.append((pid, m, res))
        return res

    def send(self, target: str, tags: list[tuple[str, str]], data: str | None = None, sender: str | None = None) -> dict:
        """Deliver one message (from the owner wallet, or from process `sender`), then everything it causes."""
        first = self._msg(target, sender or OWNER, AUTHORITY if sender else OWNER, tags, data)
        queue = deque([(target, first)])
        result = None
        while queue:
            pid, m = queue.popleft()
            if pid not in self.procs:
                continue
            res = self._handle(pid, m)
            result = result or res
            for out in res.get("Messages") or []:
                tags_out = [(t["name"], t["value"]) for t in out.get("Tags", [])]
                queue.append((out["Target"], self._msg(out["Target"], pid, AUTHORITY, tags_out, out.get("Data"))))
        return result

    def eval(self, pid: str, code: str) -> str:
        res = self.send(pid, [("Action", "Eval")], code)
        assert not res.get("Error"), res.get("Error")
        return ANSI.sub("", res["Output"]["data"])

    def received(self, pid: str, action: str) -> list[dict]:
        """Messages with Action=`action` that process `pid` received."""
        out = []
        for target, m, _ in self.log:
            tags = {t["name"]: t["value"] for t in m["Tags"]}
            if target == pid and tags.get("Action") == action:
                out.append({**tags, "From": m["From"], "Data": m.get("Data")})
        return out


@pytest.fixture
def net():
    n = Net()
    yield n
    n.close()


def load(net: Net, pid: str, name: str) -> str:
    source = blueprint_source(name)
    assert source is not None
    return net.eval(pid, source)


TOKEN, ALICE, BOB = "T" * 43, "a" * 43, "b" * 43


def balances(net: Net) -> dict:
    return json.loads(net.eval(TOKEN, "return require('json').encode(Balances)"))


def last_to(net: Net, pid: str) -> dict:
    """Tags (plus Data) of the last message delivered to process `pid`."""
    m = [m for t, m, _ in net.log if t == pid][-1]
    return {**{t["name"]: t["value"] for t in m["Tags"]}, "Data": m.get("Data"), "From": m["From"]}


@needs_bint
def test_token_info_balance_transfer_with_notices(net):
    net.spawn(TOKEN, "Tok")
    net.spawn(ALICE, "alice")
    net.spawn(BOB, "bob")
    load(net, TOKEN, "token")
    supply = "10000" + "0" * 12
    assert balances(net) == {TOKEN: supply}
    net.send(TOKEN, [("Action", "Info")], sender=ALICE)
    info = last_to(net, ALICE)
    assert (info["Name"], info["Ticker"], info["Denomination"], info["From"]) == ("Tok", "PNTS", "12", TOKEN)  # Name comes from the process
    net.eval(TOKEN, f"Send({{Target = ao.id, Action = 'Transfer', Recipient = '{ALICE}', Quantity = '250', "
                    "['X-Memo'] = 'hi', ['Y-Other'] = 'no'})")
    # the transfer is sent by the token to itself, so it spends the token's own balance
    credit = net.received(ALICE, "Credit-Notice")
    assert len(credit) == 1 and credit[0]["Quantity"] == "250" and credit[0]["Sender"] == TOKEN
    assert credit[0]["X-Memo"] == "hi" and "Y-Other" not in credit[0]
    debit = net.received(TOKEN, "Debit-Notice")
    assert debit and debit[0]["Recipient"] == ALICE and debit[0]["X-Memo"] == "hi"
    assert balances(net)[ALICE] == "250"
    assert balances(net)[TOKEN] == str(int(supply) - 250)
    net.send(TOKEN, [("Action", "Balance"), ("Recipient", ALICE)], sender=BOB)
    reply = last_to(net, BOB)
    assert (reply["Balance"], reply["Account"], reply["Data"]) == ("250", ALICE, "250")
    net.send(TOKEN, [("Action", "Balance")], sender=BOB)
    assert last_to(net, BOB)["Balance"] == "0" and last_to(net, BOB)["Account"] == BOB


@needs_bint
def test_token_failed_transfer_changes_nothing(net):
    net.spawn(TOKEN, "Tok")
    net.spawn(ALICE, "alice")
    load(net, TOKEN, "token")
    before = balances(net)
    net.send(TOKEN, [("Action", "Transfer"), ("Recipient", BOB), ("Quantity", "5")], sender=ALICE)
    errors = net.received(ALICE, "Transfer-Error")
    assert errors and errors[0]["Error"] == "Insufficient Balance!"
    assert balances(net) == before
    res = net.send(TOKEN, [("Action", "Transfer"), ("Recipient", BOB), ("Quantity", "0")], sender=ALICE)
    assert "Quantity must be greater than 0" in res["Error"]


@needs_bint
def test_token_mint_only_by_itself(net):
    net.spawn(TOKEN, "Tok")
    net.spawn(ALICE, "alice")
    load(net, TOKEN, "token")
    net.send(TOKEN, [("Action", "Mint"), ("Quantity", "7")], sender=ALICE)
    err = net.received(ALICE, "Mint-Error")
    assert err and "Only the Process Id can mint new PNTS tokens!" == err[0]["Error"]
    net.eval(TOKEN, "Send({Target = ao.id, Action = 'Mint', Quantity = '7'})")
    assert net.eval(TOKEN, "return TotalSupply") == "10000" + "0" * 11 + "7"


def test_chatroom_and_chat_client(net):
    room, alice = "R" * 43, ALICE
    net.spawn(room, "room")
    net.spawn(alice, "alice")
    load(net, room, "chatroom")
    load(net, alice, "chat")
    net.eval(alice, f"Rooms['Lobby'] = '{room}'")
    assert "Registering with room Lobby as neo" in net.eval(alice, "return Join('Lobby', 'neo')")
    assert net.eval(room, "return #Members") == "1"
    net.eval(alice, "Say('hello all')")
    notices = net.received(alice, "Broadcast-Notice")
    assert len(notices) == 1 and notices[0]["Data"] == "hello all" and notices[0]["Nickname"] == "neo"
    printed = [ANSI.sub("", r["Output"]["data"]) for t, m, r in net.log
               if t == alice and isinstance(r.get("Output"), dict) and r["Output"].get("print")]
    assert "[neo@Lobby]> hello all" in printed
    assert net.eval(alice, "return Replay(1)") == "[neo@Lobby]> hello all"
    net.eval(alice, "Leave('Lobby')")
    assert net.eval(room, "return #Members") == "0"


@needs_bint
def test_staking_and_voting(net):
    net.spawn(TOKEN, "Tok")
    load(net, TOKEN, "token")
    load(net, TOKEN, "staking")
    load(net, TOKEN, "voting")
    net.eval(TOKEN, f"Balances['{ALICE}'] = '100'")
    net.spawn(ALICE, "alice")
    net.send(TOKEN, [("Action", "Stake"), ("Quantity", "60"), ("Unstake-Delay", "5")], sender=ALICE)
    assert balances(net)[ALICE] == "40"
    assert net.eval(TOKEN, f"return Stakers['{ALICE}'].amount") == "60"
    res = net.send(TOKEN, [("Action", "Stake"), ("Quantity", "999")], sender=ALICE)
    assert "Insufficient balance to stake" in res["Error"]
    net.send(TOKEN, [("Action", "Vote"), ("Proposal", "p1"), ("Side", "yay"), ("Deadline", "3")], sender=ALICE)
    assert net.eval(TOKEN, "return Votes.p1.yay") == "60"
    net.send(TOKEN, [("Action", "Unstake"), ("Quantity", "60")], sender=ALICE)
    net.height += 10  # past the vote deadline and the unstake delay
    net.eval(TOKEN, "x = 1")
    assert net.eval(TOKEN, "return Results.p1") == "passed"
    assert balances(net)[ALICE] == "100"


def test_apm_blueprint_refuses_strangers_and_installs_from_registry(net):
    registry, me, evil = "G" * 43, "m" * 43, "e" * 43
    net.spawn(registry, "registry")
    net.spawn(me, "me")
    net.spawn(evil, "evil")
    net.eval(me, f"apm.ID = '{registry}'")  # point the built-in client at our registry
    assert net.eval(me, blueprint_source("apm")) == "📦 Loading APM..."
    assert net.received(registry, "APM.Update")
    source = "local apm = { installed = {} } function apm.install(q) return 'installing ' .. q end return apm"
    hexsrc = source.encode().hex()
    before = net.eval(me, "return tostring(apm._version)")
    res = net.send(me, [("Action", "APM.UpdateResponse"), ("Result", "success"), ("Version", "9.9.9")], hexsrc,
                   sender=evil)
    assert "Attempt to update from illegal source" in ANSI.sub("", res["Output"]["data"])
    assert net.eval(me, "return tostring(apm._version)") == before != "9.9.9"
    net.send(me, [("Action", "APM.UpdateResponse"), ("Result", "success"), ("Version", "2.1.0")], hexsrc,
             sender=registry)
    assert net.eval(me, "return APM.install('@sam/x') .. ' ' .. apm._version") == "installing @sam/x 2.1.0"


def test_arena_waits_then_plays_with_free_entry(net):
    arena = "Z" * 43
    net.spawn(arena, "arena")
    net.spawn(ALICE, "alice")
    net.spawn(BOB, "bob")
    load(net, arena, "arena")
    net.eval(arena, "WaitTime = 10 ^ 9; GameTime = 10 ^ 9")
    net.send(arena, [("Action", "Tick")], sender=ALICE)
    assert net.eval(arena, "return GameMode") == "Waiting"
    net.send(arena, [("Action", "Register")], sender=ALICE)
    net.send(arena, [("Action", "Register")], sender=BOB)
    net.eval(arena, "StateChangeTime = Now")  # the waiting period is over
    net.send(arena, [("Action", "Tick")], sender=ALICE)
    assert net.eval(arena, "return GameMode") == "Playing"
    assert net.eval(arena, f"return Players['{BOB}'].health") == "100"
    net.eval(arena, f"eliminatePlayer('{BOB}', '{ALICE}')")
    assert net.received(BOB, "Eliminated")
    assert net.eval(arena, "return GameMode").splitlines()[-1] == "Waiting"
    assert net.eval(arena, f"return Rewards['{ALICE}']") == "2"
