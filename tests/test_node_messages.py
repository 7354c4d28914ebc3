"""The local node end to end through the Client: spawn, eval, outbox pushing, trust, rollback, dry-run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aos_py.client import Client, NotFoundError, RejectedError, load_wallet
from aos_py.node import ans104
from aos_py.node.modules import default_module_item
from aos_py.node.su import verify_chain

VEC = Path(__file__).parent / "vectors"
ALICE = load_wallet(VEC / "wallet-a.json", create=False)
BOB = load_wallet(VEC / "wallet-b.json", create=False)


@pytest.fixture
def client(tmp_path):
    c = Client.open(tmp_path / "node")
    yield c
    c.close()


def data(res: dict):
    assert "Error" not in res, res.get("Error")
    out = res["Output"]
    return out["data"] if isinstance(out, dict) else out


def wait_for(fn, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_spawn_eval_and_find_by_name(client):
    pid = client.spawn(ALICE, name="calc")
    assert len(pid) == 43
    assert data(client.eval(ALICE, pid, "return 6 * 7")) == "42"
    assert data(client.eval(ALICE, pid, "Name")) == "calc"
    found = client.find_processes(ALICE.address, "calc")
    assert [p["id"] for p in found] == [pid]
    assert client.find_processes(BOB.address, "calc") == []
    second = client.spawn(ALICE, name="calc")
    assert [p["id"] for p in client.find_processes(ALICE.address, "calc")] == [second, pid]


def test_default_module_id_is_the_same_on_every_node(client, tmp_path):
    other = Client.open(tmp_path / "other-node")
    try:
        assert other.default_module() == client.default_module() == default_module_item().id
        assert other.authority() != client.authority()
    finally:
        other.close()


def test_spawn_with_unknown_module_fails_clearly(client):
    with pytest.raises(RejectedError, match="unknown module"):
        client.spawn(ALICE, name="x", module="A" * 43)
    assert client.find_processes(ALICE.address, "x") == []


def test_send_to_unknown_process(client):
    with pytest.raises(NotFoundError, match="no process"):
        client.send(ALICE, "B" * 43, data="hi")
    with pytest.raises(RejectedError, match="43-character"):
        client.send(ALICE, "nope", data="hi")


def test_error_result_leaves_state_as_before_also_after_restart(tmp_path):
    c = Client.open(tmp_path / "n")
    pid = c.spawn(ALICE)
    data(c.eval(ALICE, pid, "Counter = 1"))
    res = c.eval(ALICE, pid, "Counter = 99; error('boom')")
    assert "boom" in res["Error"]
    assert data(c.eval(ALICE, pid, "Counter")) == "1"
    c.close()
    c = Client.open(tmp_path / "n")
    try:
        assert data(c.eval(ALICE, pid, "Counter")) == "1"
        failed = [r for r in c.results(pid, limit=100) if "Error" in r["result"]]
        assert len(failed) == 1
    finally:
        c.close()


PONG = """
Pings = Pings or 0
Handlers.add('ping', 'Ping', function(m)
  Pings = Pings + 1
  LastFrom = m.From
  m.reply({Action = 'Pong', Data = tostring(Pings)})
end)
"""


def test_outbox_messages_are_pushed_with_from_process(client):
    a = client.spawn(ALICE, name="a")
    b = client.spawn(ALICE, name="b")
    data(client.eval(ALICE, b, PONG))
    data(client.eval(ALICE, a, "Handlers.add('pong', 'Pong', function(m) Got = m.Data; GotFrom = m.From end)"))
    client.eval(ALICE, a, f"Send({{Target = '{b}', Action = 'Ping'}})")
    assert wait_for(lambda: data(client.dryrun(a, tags=[("Action", "Eval")], data="Got",
                                                owner=ALICE.address)) == "1")
    assert data(client.eval(ALICE, b, "LastFrom")) == a
    assert data(client.eval(ALICE, a, "GotFrom")) == b
    # the pushed message carries the MU tags and is signed by the node
    ping = [r for r in client.results(b, limit=100) if r["cursor"] >= 2][0]
    node = client.node
    row = node.store.query("SELECT msg FROM log WHERE pid=? AND id=?", (b, ping["id"]))[0]
    msg = json.loads(row[0])
    tags = {t["name"]: t["value"] for t in msg["Tags"]}
    assert tags["From-Process"] == a and tags["Type"] == "Message" and "Pushed-For" in tags
    assert msg["Owner"] == client.authority() and msg["From"] == a
    item = ans104.parse_and_verify(node.gateway.raw(ping["id"]))
    assert item.owner_address == client.authority()


def test_process_spawns_a_child_and_gets_spawned_notice(client):
    a = client.spawn(ALICE, name="parent")
    module = client.default_module()
    data(client.eval(ALICE, a, "Handlers.add('spawned', 'Spawned', function(m) Child = m.Process end)"))
    data(client.eval(ALICE, a, f"Spawn('{module}', {{Name = 'kid'}})"))
    child = wait_for(lambda: data(client.dryrun(a, tags=[("Action", "Eval")], data="Child or ''",
                                                 owner=ALICE.address)))
    info = client.process_info(child)
    assert info["name"] == "kid" and info["owner"] == client.authority()
    # the child's owner is its parent, and the node is its Authority: the parent can Eval in it
    client.eval(ALICE, a, f"Send({{Target = '{child}', Action = 'Eval', Data = 'Hi = 7'}})")
    assert wait_for(lambda: data(client.dryrun(child, tags=[("Action", "Eval")], data="Hi",
                                                owner=a)) == "7")


def test_forged_from_and_owner_tags_have_no_effect(client):
    pid = client.spawn(ALICE)
    data(client.eval(ALICE, pid, "Handlers.add('who', 'Who', function(m) Seen = m.From .. '|' .. m.Owner end)"))
    client.send(BOB, pid, tags=[("Action", "Who"), ("From", "FORGED"), ("Owner", "FORGED")])
    seen = wait_for(lambda: data(client.dryrun(pid, tags=[("Action", "Eval")], data="Seen or ''",
                                               owner=ALICE.address)))
    assert seen == f"{BOB.address}|{BOB.address}"


def test_message_claiming_another_process_from_a_non_authority_is_not_trusted(client):
    a = client.spawn(ALICE, name="a")
    b = client.spawn(ALICE, name="b")
    data(client.eval(ALICE, b, PONG))
    mid = client.send(BOB, b, tags=[("Action", "Ping"), ("From-Process", a)])
    res = client.wait_result(b, mid)
    assert "not trusted" in json.dumps(res["Output"])
    assert data(client.eval(ALICE, b, "Pings")) == "0"


def test_bad_items_are_rejected_and_change_nothing(client):
    pid = client.spawn(ALICE)
    before = len(client.results(pid, limit=1000))
    big = ans104.build(ALICE, target=pid, tags=[("Data-Protocol", "ao"), ("Type", "Message")],
                       data=b"x" * (20 * 1024 * 1024)).raw
    with pytest.raises(RejectedError, match="over the 10,485,760-byte limit"):
        client.submit(big)
    good = ans104.build(ALICE, target=pid, tags=[("Data-Protocol", "ao"), ("Type", "Message")], data="x").raw
    flipped = bytearray(good)
    flipped[-1] ^= 1
    with pytest.raises(RejectedError, match="invalid signature"):
        client.submit(bytes(flipped))
    with pytest.raises(RejectedError, match="Data-Protocol"):
        client.submit(ans104.build(ALICE, target=pid, tags=[("Type", "Message")], data="x").raw)
    with pytest.raises(RejectedError, match="unsupported Type"):
        client.submit(ans104.build(ALICE, target=pid, tags=[("Data-Protocol", "ao"), ("Type", "Module")]).raw)
    with pytest.raises(RejectedError, match="truncated"):
        client.submit(good[:1100])
    assert len(client.results(pid, limit=1000)) == before


def test_slots_are_gap_free_and_chained(client):
    pid = client.spawn(ALICE)
    for i in range(5):
        client.send(ALICE, pid, data=f"x = {i}", tags=[("Action", "Eval")])
    rows = client.node.log_rows(pid)
    assert [r[0] for r in rows] == list(range(6))
    verify_chain(pid, rows)
    msgs = [json.loads(m) for (m,) in client.node.store.query("SELECT msg FROM log WHERE pid=? ORDER BY nonce",
                                                               (pid,))]
    ts = [m["Timestamp"] for m in msgs]
    assert ts == sorted(ts) and all(isinstance(m["Block-Height"], int) for m in msgs)
    tampered = list(rows)
    tampered[3] = (3, rows[3][1], rows[2][2])
    with pytest.raises(ValueError, match="hash chain broken at slot 3"):
        verify_chain(pid, tampered)


def test_results_pagination_and_dryrun_changes_nothing(client):
    pid = client.spawn(ALICE)
    for i in range(4):
        client.eval(ALICE, pid, f"N = {i}")
    page = client.results(pid, limit=2)
    assert [r["cursor"] for r in page] == [0, 1]
    nxt = client.results(pid, after=page[-1]["cursor"], limit=10)
    assert [r["cursor"] for r in nxt] == [2, 3, 4]
    newest = client.results(pid, sort="DESC", limit=1)
    assert newest[0]["cursor"] == 4
    res = client.dryrun(pid, tags=[("Action", "Eval")], data="N = 100; return N", owner=ALICE.address)
    assert data(res) == "100"
    assert data(client.eval(ALICE, pid, "N")) == "3"
    assert len(client.results(pid, limit=100)) == 6   # 5 before + the Eval above; the dry-run left no trace
    with pytest.raises(RejectedError, match="sort"):
        client.results(pid, sort="UP")


def test_state_survives_restart_by_replay(tmp_path):
    c = Client.open(tmp_path / "n")
    pid = c.spawn(ALICE)
    for i in range(20):
        c.send(ALICE, pid, data=f"Total = (Total or 0) + {i}", tags=[("Action", "Eval")])
    assert data(c.eval(ALICE, pid, "Total")) == str(sum(range(20)))
    c.close()
    c = Client.open(tmp_path / "n")
    try:
        assert data(c.eval(ALICE, pid, "Total")) == str(sum(range(20)))
        assert c.node.cu.replayed >= 21
    finally:
        c.close()


def test_subscribe_reports_computed_messages(client):
    pid = client.spawn(ALICE)
    events = []
    unsub = client.subscribe(pid, events.append)
    mid = client.send(BOB, pid, data="1", tags=[("Action", "Eval")])
    client.wait_result(pid, mid)
    wait_for(lambda: events)
    assert events[0]["id"] == mid and events[0]["from"] == BOB.address and events[0]["action"] == "Eval"
    assert "result" in events[0]
    unsub()
    client.eval(ALICE, pid, "2")
    time.sleep(0.1)
    assert len(events) == 1


def test_data_is_content_addressed_and_readable_by_processes(client, tmp_path):
    f = tmp_path / "hello.txt"
    f.write_bytes(b"hello from a file")
    did = client.add_data(f, tags=[("Kind", "greeting")])
    assert client.add_data(b"hello from a file") == did
    assert [d["id"] for d in client.list_data("Kind", "greeting")] == [did]
    assert client.list_data("Kind", "other") == []
    pid = client.spawn(ALICE)
    code = f"local f = io.open('/data/{did}', 'rb'); local s = f:read('a'); f:close(); return s"
    assert data(client.eval(ALICE, pid, code)) == "hello from a file"
    with pytest.raises(RejectedError, match="no such file"):
        client.add_data(tmp_path / "missing.bin")


def test_assignment_reaches_an_assignable_process(client):
    a = client.spawn(ALICE, name="a")
    b = client.spawn(ALICE, name="b")
    data(client.eval(ALICE, b, "ao.addAssignable('all', function() return true end)\n"
                               "Handlers.add('seen', 'Note', function(m) Noted = m.Data end)"))
    mid = client.send(ALICE, a, data="assigned!", tags=[("Action", "Note")])
    client.wait_result(a, mid)
    client.eval(ALICE, a, f"Assign({{Processes = {{'{b}'}}, Message = '{mid}'}})")
    assert wait_for(lambda: data(client.dryrun(b, tags=[("Action", "Eval")], data="Noted or ''",
                                                owner=ALICE.address))) == "assigned!"


def test_a_dryrun_never_leaks_into_a_later_one(client):
    pid = client.spawn(ALICE)
    data(client.eval(ALICE, pid, "V = 1"))
    ask = lambda code: data(client.dryrun(pid, tags=[("Action", "Eval")], data=code, owner=ALICE.address))  # noqa: E731
    for _ in range(3):
        assert ask("V = V + 10; return V") == "11"
        time.sleep(0.05)   # give the spare runtime time to be prepared, then use it
    data(client.eval(ALICE, pid, "V = 5"))
    assert ask("V") == "5"   # the spare catches up with messages logged after it was built


def test_a_missing_slot_is_reported(client):
    pid = client.spawn(ALICE)
    for i in range(3):
        client.send(ALICE, pid, data=str(i), tags=[("Action", "Eval")])
    rows = client.node.log_rows(pid)
    with pytest.raises(ValueError, match="slot 2 is missing"):
        verify_chain(pid, rows[:2] + rows[3:])


def test_a_runtime_that_cannot_start_fails_the_message_not_the_node(tmp_path):
    calls = {"n": 0}

    def flaky_factory(**kw):
        from aos_py.runtime import ProcessRuntime
        calls["n"] += 1
        if calls["n"] == 2:     # the runtime rebuilt after an Error result cannot be created
            raise MemoryError("no memory for a new Lua state")
        return ProcessRuntime(**kw)

    c = Client.open(tmp_path / "n", runtime_factory=flaky_factory, services=False)
    try:
        pid = c.spawn(ALICE)
        assert "Error" in c.eval(ALICE, pid, "error('x')")
        res = c.eval(ALICE, pid, "1 + 1")
        assert "could not be run" in res["Error"] and "no memory" in res["Error"]
        assert data(c.eval(ALICE, pid, "1 + 2")) == "3"    # the next attempt works again
    finally:
        c.close()


def test_binary_and_large_data_reach_the_process_intact(client):
    pid = client.spawn(ALICE)
    data(client.eval(ALICE, pid, "Handlers.add('keep', 'Keep', function(m) Kept = m.Data end)"))
    blob = bytes(range(256)) * 4
    client.send(ALICE, pid, data=blob, tags=[("Action", "Keep")])
    assert data(client.eval(ALICE, pid, "#Kept .. ':' .. Kept:byte(1) .. ':' .. Kept:byte(256)")) == "1024:0:255"
    big = "y" * (9 * 1024 * 1024)     # under the 10 MiB item limit
    client.send(ALICE, pid, data=big, tags=[("Action", "Keep")])
    assert data(client.eval(ALICE, pid, "#Kept")) == str(len(big))


def test_a_subscriber_may_call_back_into_the_node(client):
    pid = client.spawn(ALICE)
    answers = []

    def on_event(event):
        if event["action"] == "Eval" and not answers:
            answers.append(data(client.eval(ALICE, pid, "40 + 2")))   # waits for a later round
    client.subscribe(pid, on_event)
    client.eval(ALICE, pid, "1")
    assert wait_for(lambda: answers) == ["42"]
