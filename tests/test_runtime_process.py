"""ProcessRuntime.handle(): the aos process behaviour users and the node rely on."""

from __future__ import annotations

import re
import sys
import types

import pytest
from process_harness import ProcessHarness
from process_harness import output_data as data

from aos_py.runtime import HandleError, ProcessRuntime

P = ProcessHarness(pid="PROCESS-ID-0123456789", owner="OWNER-ADDRESS-012345", name="Thomas", module="WOOPAWOOPA",
                   msg_id="MSG-", block_height="1000", boot_block_height="999")
PID, OWNER, ENV = P.pid, P.owner, P.env
msg, boot_message, booted, ev = P.msg, P.boot_message, P.booted, P.eval
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def rt():
    yield from P.running()


def test_boot_result_shape(rt):
    fresh = ProcessRuntime()
    res = fresh.handle(boot_message(), ENV)
    assert set(res) == {"Output", "Messages", "Spawns", "Assignments", "GasUsed"}
    assert res["Output"]["print"] is True
    assert ANSI.sub("", res["Output"]["prompt"]) == "Thomas@aos-2.0.4[Inbox:1]> "
    assert ANSI.sub("", res["Output"]["data"]) == "New Message From OWN...345: Data = "
    assert res["Messages"] == [] and res["Spawns"] == [] and res["Assignments"] == []


def test_eval_expression_and_statement(rt):
    res = ev(rt, "1 + 1")
    assert res["Output"]["data"] == "2"
    assert res["Output"]["test"] == '{\n    [1] = "2"\n}'
    assert "print" not in res["Output"]
    assert data(ev(rt, "x = 41", 2)) == ""
    assert data(ev(rt, "print('p'); return x + 1", 3)) == "p\n42"


def test_eval_errors_have_aos_formats(rt):
    assert ev(rt, "local x = = 1")["Error"] == "[string \"aos\"]:1: unexpected symbol near '='"
    res = ev(rt, "print('before'); error('bad')", 2)
    assert res["Error"].startswith("before\n\n\x1b[31merror:\n\x1b[0m[string \".handlers\"]:")
    assert res["Error"].endswith('[string "aos"]:1: bad')
    assert ev(rt, "return 1, 2", 3)["Error"] == 2
    assert data(ev(rt, "#Errors", 4)) == "1"


def test_non_string_error_value_fails_the_call(rt):
    with pytest.raises(HandleError, match=r"attempt to concatenate a table value \(local 'result'\)"):
        ev(rt, "error({code = 42})")
    # the runtime itself stays usable (the caller decides about its state)
    assert data(ev(rt, "1 + 1", 2)) == "2"


def test_handler_error_reports_and_later_messages_work(rt):
    data(ev(rt, "Handlers.add('boom', 'Boom', function(m) print('started'); local t = nil; return t.x end)"))
    res = rt.handle(msg(2, action="Boom"), ENV)
    plain = ANSI.sub("", res["Error"])
    assert plain.startswith("started\nError handling message with Action = Boom\n")
    assert "attempt to index a nil value (local 't')" in plain
    assert "stack traceback:" in plain
    assert plain.endswith("error:\n" + plain.split("error:\n")[-1])
    assert set(res) == {"Error", "GasUsed"}
    assert data(ev(rt, "1 + 1", 3)) == "2"


def test_ping_reply_message_shape(rt):
    data(ev(rt, "Handlers.add('ping', 'Ping', function(m) m.reply({Action = 'Pong', Data = 'pong'}) end)"))
    res = rt.handle(msg(2, action="Ping", sender="ALICE"), ENV)
    (out,) = res["Messages"]
    assert out["Target"] == "ALICE" and out["Data"] == "pong"
    assert out["Anchor"] == "0" * 31 + "1"
    names = [t["name"] for t in out["Tags"]]
    assert names[:4] == ["Data-Protocol", "Variant", "Type", "Reference"]
    assert {"name": "Action", "value": "Pong"} in out["Tags"]
    assert res["Output"]["print"] is True


def test_default_handler_and_inbox_cap(rt):
    res = rt.handle(msg(1, "hello inbox", action=None, sender="ALICE-WALLET-ADDR"), ENV)
    assert ANSI.sub("", res["Output"]["data"]) == "New Message From ALI...DDR: Data = hello inbox"
    data(ev(rt, "for i = #Inbox + 1, 10000 do Inbox[i] = {Data = 'filler ' .. i} end", 2))
    assert data(ev(rt, "#Inbox", 3)) == "10000"
    rt.handle(msg(4, "newest", action=None, sender="BOB-WALLET-ADDR"), ENV)
    assert data(ev(rt, "#Inbox .. ' ' .. Inbox[#Inbox].Data .. ' ' .. Inbox[1].Data", 5)) == "10000 newest hello inbox"


def test_untrusted_message_is_not_processed(rt):
    m = msg(1, "pushed", action=None)
    m["From"], m["Owner"] = "OTHER-PROCESS", "SOME-WALLET"
    res = rt.handle(m, ENV)
    assert res["Output"]["data"] == "Message is not trusted! From: OTHER-PROCESS - Owner: SOME-WALLET"
    assert data(ev(rt, "#Inbox", 2)) == "1"


def test_only_owner_may_eval(rt):
    res = rt.handle(msg(1, "secret = 1", sender="MALLORY-ADDR"), ENV)
    assert "New Message From" in res["Output"]["data"]
    assert data(ev(rt, "tostring(secret)", 2)) == "nil"


def test_receive_suspends_and_resumes(rt):
    res = ev(rt, "local r = Send({Target = 'PEER', Action = 'Q'}).receive(); print('got ' .. r.Data)")
    assert res["Output"]["data"] == ""
    assert res["Messages"][0]["Target"] == "PEER"
    res = rt.handle(msg(2, "answer", action=None, sender="PEER", tags=[("X-Reference", "1")]), ENV)
    assert res["Output"]["data"] == "got answer"


def test_spawn_after_callback_works(rt):
    res = ev(rt, "Spawn('MOD-X', {Data = 'x'}).after(function(m) print('spawned ' .. m.Process) end)")
    assert res["Spawns"][0]["Data"] == "x"
    notice = msg(2, action="Spawned", sender=PID, tags=[("Reference", "1"), ("Process", "CHILD")])
    assert rt.handle(notice, ENV)["Output"]["data"] == "spawned CHILD"


def test_os_time_is_message_timestamp(rt):
    assert data(ev(rt, "os.time()", 7)) == str(1700000000000 + 7)


def test_on_boot_from_data_mount(tmp_path):
    code = tmp_path / "boot.lua"
    code.write_text("Booted = 'from file'\nprint('booting')")
    rt = ProcessRuntime(data_resolver=lambda i: code if i == "BOOT-CODE" else None)
    env = {"Process": {"Id": PID, "Owner": OWNER, "Tags": [
        {"name": "Name", "value": "Thomas"}, {"name": "Module", "value": "WOOPAWOOPA"},
        {"name": "Type", "value": "Process"}, {"name": "On-Boot", "value": "BOOT-CODE"}]}}
    boot = boot_message()
    boot["Tags"] = env["Process"]["Tags"]
    res = rt.handle(boot, env)
    assert res["Output"]["data"] == "booting"
    assert rt.handle(msg(1, "Booted"), env)["Output"]["data"] == "from file"


def test_binary_data_survives(rt):
    raw = bytes(range(256))
    data(ev(rt, "Handlers.add('bin', 'Bin', function(m) Last = m.Data end)"))
    rt.handle(msg(2, raw, action="Bin"), ENV)
    assert data(ev(rt, "#Last .. ' ' .. Last:byte(1) .. ' ' .. Last:byte(256)", 3)) == "256 0 255"


def test_binary_output_survives(rt):
    out = data(ev(rt, "string.char(104, 105, 255, 0, 10)"))
    assert out.encode("utf-8", "surrogateescape") == b"hi\xff\x00\n"


def test_numbers_cross_like_json(rt):
    res = ev(rt, "Send({Target = 'T', Big = 123456789012345, Small = 3.0, Int = 7})")
    tags = {t["name"]: t["value"] for t in res["Messages"][0]["Tags"]}
    assert tags["Big"] == 1.2345678901234e14
    assert tags["Small"] == 3 and tags["Int"] == 7


def test_same_messages_same_results():
    """Two processes fed the same messages produce identical results (pairs order included)."""
    script = [
        "t = {zeta = 1, alpha = 2, mid = {b = 1, a = 2}, 'x'}",
        "print(t)",
        "return Send({Target = 'T', Zed = '1', Alpha = '2', Mid = '3', Data = {k2 = 1, k1 = 2}}).output",
        "require('json').encode({b = 1, a = 2, c = {z = 1, y = 2}})",
        "Handlers.add('h', {Action = 'H'}, function(m) m.reply({Data = m.Data, Foo = 'f', Bar = 'b'}) end)",
    ]
    results = []
    for _ in range(2):
        rt = booted()
        run = [ev(rt, code, n) for n, code in enumerate(script, 1)]
        run.append(rt.handle(msg(99, "payload", action="H", sender="ALICE"), ENV))
        results.append(run)
        rt.close()
    assert results[0] == results[1]


def test_math_random_seeded_like_aos():
    rt = booted()
    if "Error" in ev(rt, "require('.chance')"):
        pytest.skip("lua/chance.lua (MT19937) is not in this checkout yet")
    env = {"Process": {"Id": "AOS", "Owner": "FOOBAR", "Tags": [
        {"name": "Name", "value": "Thomas"}, {"name": "Module", "value": "WOOPAWOOPA"}]}}
    first = {"Id": "AOS", "Target": "AOS", "Owner": "FOOBAR", "From": "FOOBAR", "Module": "WOOPAWOOPA",
             "Block-Height": "999", "Timestamp": 1700000000000, "Tags": env["Process"]["Tags"]}
    rolls = {"Id": "M1", "Target": "AOS", "Owner": "FOOBAR", "From": "FOOBAR", "Module": "WOOPAWOOPA",
             "Block-Height": "1000", "Timestamp": 1700000000001, "Tags": [{"name": "Action", "value": "Eval"}],
             "Data": "local r = {} for i = 1, 5 do r[i] = math.random(10) end return table.concat(r, ',')"}
    fresh = ProcessRuntime()
    fresh.handle(first, env)
    assert fresh.handle(rolls, env)["Output"]["data"] == "2,6,1,10,8"
    other = ProcessRuntime()
    other.handle(first, env)
    rolls["Data"] = "math.random()"
    assert other.handle(rolls, env)["Output"]["data"] == "0.14534765831195"


class _FakeLlama:
    """Stands in for aos_py.inference.host's object to check the `_llama` bridge."""

    def __init__(self, resolver, kind):
        self.kind = kind
        self.prompt = ""

    def load(self, path):
        if path != "/data/MODEL":
            raise FileNotFoundError(f"model file {path} not found")
        return True

    def set_prompt(self, s):
        self.prompt = s

    def run(self, n):
        return f"{self.prompt}|{n}|{self.kind}"

    def info(self):
        return "fake"


def test_llama_host_module(monkeypatch):
    fake = types.ModuleType("aos_py.inference.host")
    fake.make_llama_host = lambda resolver, kind: _FakeLlama(resolver, kind)
    monkeypatch.setitem(sys.modules, "aos_py.inference.host", fake)
    rt = booted(llama_engine="native")
    res = ev(rt, "local h = require('_llama'); h.set_prompt('hi'); return h.run(3)")
    assert data(res) == "hi|3|native"
    res = ev(rt, "require('_llama').load('/data/OTHER')", 2)
    assert res["Error"].endswith(": model file /data/OTHER not found")
    assert "Traceback" not in res["Error"]
    res = ev(rt, "local h = require('_llama'); return type(h.info) .. ' ' .. tostring(h.__class__)", 3)
    assert data(res) == "function nil"


def test_state_dump_compares_processes():
    a, b = booted(), booted()
    assert a.state_dump() == b.state_dump()
    for rt in (a, b):
        data(ev(rt, "Balances = {alice = 10, bob = 5}; Handlers.add('t', 'T', function() end)"))
    assert a.state_dump() == b.state_dump()
    data(ev(a, "Balances.alice = 9", 2))
    assert a.state_dump() != b.state_dump()
    assert '"alice"=9;' in a.state_dump()
    before = a.state_dump()
    assert a.state_dump() == before  # dumping changes nothing
