"""Behaviours of the aos 2.0.4 process beyond the recorded vectors (spec §10 numbering).

Standard setup: process AOS, owner FOOBAR, name Thomas, module WOOPAWOOPA; the
first message (no Type tag) initialises the process. Messages "from X" have
From = Owner = X.
"""

from __future__ import annotations

import json
import re

import pytest

from aos_py.runtime import HandleError, ProcessRuntime

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Proc:
    """A booted process plus helpers to send it messages."""

    def __init__(self, env_tags: list[tuple[str, str]] = (), boot_tags: list[tuple[str, str]] | None = None,
                 boot_data: str | None = None):
        tags = [("Name", "Thomas"), ("Module", "WOOPAWOOPA"), *env_tags]
        self.env = {"Process": {"Id": "AOS", "Owner": "FOOBAR", "Tags": [{"name": n, "value": v} for n, v in tags]}}
        self.rt = ProcessRuntime()
        self.n = 0
        boot = {"Id": "AOS", "Target": "AOS", "Owner": "FOOBAR", "From": "FOOBAR", "Module": "WOOPAWOOPA",
                "Block-Height": "999", "Timestamp": 1700000000000,
                "Tags": [{"name": n, "value": v} for n, v in (boot_tags if boot_tags is not None else tags)]}
        if boot_data is not None:
            boot["Data"] = boot_data
        self.boot = self.rt.handle(boot, self.env)

    def send(self, *, sender: str = "FOOBAR", owner: str | None = None, data=None, target: str = "AOS",
             tags: list[tuple[str, str]] = (), **extra) -> dict:
        self.n += 1
        m = {"Id": f"MSG-{self.n}", "Target": target, "Owner": owner or sender, "From": sender,
             "Module": "WOOPAWOOPA", "Block-Height": "1000", "Timestamp": 1700000000000 + self.n,
             "Tags": [{"name": n, "value": v} for n, v in tags]}
        if data is not None:
            m["Data"] = data
        m.update(extra)
        return self.rt.handle(m, self.env)

    def eval(self, code: str, **kw) -> dict:
        return self.send(data=code, tags=[("Action", "Eval")], **kw)

    def out(self, code: str) -> str:
        res = self.eval(code)
        assert "Error" not in res, res["Error"]
        return res["Output"]["data"]


def plain(s: str) -> str:
    return ANSI.sub("", s)


@pytest.fixture
def p() -> Proc:
    return Proc()


def test_10_13_non_string_error_fails_the_call(p):
    with pytest.raises(HandleError, match=r"^\[string \"\.process\"\]:\d+: attempt to concatenate a table value \(local 'result'\)$"):
        p.eval("error({code=1})")


def test_10_14_process_itself_is_untrusted_without_authority():
    p = Proc()
    res = p.eval("1 + 1", sender="AOS", owner="FOOBAR")
    assert res["Output"]["data"] == "Message is not trusted! From: AOS - Owner: FOOBAR"
    q = Proc(env_tags=[("Authority", "FOOBAR")])
    res = q.eval("1 + 1", sender="AOS", owner="FOOBAR")
    assert plain(res["Output"]["data"]) == "New Message From AOS...AOS: Action = Eval"


def test_10_15_owner_can_be_changed(p):
    p.out("Owner = 'NEW'")
    assert "New Message From" in p.eval("1")["Output"]["data"]
    assert p.eval("1 + 2", sender="NEW")["Output"]["data"] == "3"


def test_10_17_default_line_abbreviations(p):
    assert plain(p.send(sender="AB", data="x")["Output"]["data"]) == "New Message From AB...AB: Data = x"
    res = p.send(tags=[("Action", "A" * 30)])
    assert plain(res["Output"]["data"]).endswith("Action = " + "A" * 20)


def test_10_18_to_21_json_content_type(p):
    res = p.send(data='{"a":1}', tags=[("Content-Type", "application/json")])
    assert plain(res["Output"]["data"]).endswith('Data = {"a":1}')
    assert p.out("type(Inbox[#Inbox].Data)") == "table"
    res = p.send(tags=[("Content-Type", "application/json")])
    assert plain(res["Output"]["data"]).endswith("Data = []")
    with pytest.raises(HandleError, match=r"expected string for key at line 1 col 2"):
        p.send(data="{bad", tags=[("Content-Type", "application/json")])
    p.send(data='{"a":1}')
    assert p.out("type(Inbox[#Inbox].Data)") == "string"


def test_10_22_23_duplicate_and_non_extractable_tags(p):
    p.out("Handlers.add('d', 'D', function(m) print(m.Dup .. ' ' .. m.Tags.Dup .. ' ' .. #m.TagArray "
          ".. ' ' .. tostring(m.Type) .. ' ' .. m.Tags.Type) end)")
    res = p.send(tags=[("Action", "D"), ("Dup", "first"), ("Dup", "second"), ("Type", "Message")])
    assert res["Output"]["data"] == "second first 4 nil Message"


def test_10_26_ao_fields(p):
    assert p.out("ao.id .. ' ' .. ao._module .. ' ' .. #ao.authorities .. ' ' .. ao.reference .. ' ' .. ao._version") \
        == "AOS WOOPAWOOPA 0 0 0.0.6"


def test_10_29_numeric_verdicts(p):
    p.out("Handlers.add('two', function(m) return m.Action == 'N' and 2 or 0 end, function() print('two') end)")
    p.out("Handlers.add('neg', function(m) return m.Action == 'N' and -7 or 0 end, function() print('neg') end)")
    p.out("Handlers.add('skip', function(m) return 'foo' end, function() print('never') end)")
    assert p.send(tags=[("Action", "N")])["Output"]["data"] == "two\nneg"


def test_10_32_add_updates_in_place(p):
    p.out("Handlers.add('a', 'A', function() print('a1') end)")
    p.out("Handlers.add('b', 'B', function() print('b') end)")
    p.out("Handlers.add('a', 'A', function() print('a2') end)")
    p.out("Handlers.prepend('b', 'B', function() print('b2') end)")
    names = p.out("local t = {} for _, h in ipairs(Handlers.list) do t[#t+1] = h.name end return table.concat(t, ',')")
    assert names.endswith(",a,b")
    assert p.send(tags=[("Action", "A")])["Output"]["data"] == "a2"


def test_10_36_to_38_value_patterns(p):
    p.out("Handlers.add('lp', {Lp = '^ab.d$'}, function() print('lp') end)")
    p.out("Handlers.add('un', {Un = 'b.c'}, function() print('un') end)")
    p.out("Handlers.add('dh', {Dh = 'a-b'}, function() print('dh') end)")
    p.out("Handlers.add('fv', {Fv = function(v, m) return v == 'yes' end}, function() print('fv') end)")
    p.out("Handlers.add('ta', {Ta = {'x', 'y'}}, function() print('ta') end)")
    assert p.send(tags=[("Lp", "abcd")])["Output"]["data"] == "lp"
    assert "New Message" in p.send(tags=[("Lp", "xabcd")])["Output"]["data"]
    assert p.send(tags=[("Un", "zzbxczz")])["Output"]["data"] == "un"
    assert p.send(tags=[("Dh", "A-B")])["Output"]["data"] == "dh"
    assert p.send(tags=[("Fv", "yes")])["Output"]["data"] == "fv"
    assert p.send(tags=[("Ta", "y")])["Output"]["data"] == "ta"


def test_10_39_resolver_table(p):
    p.out("Handlers.add('rs', 'RS', {[{Data = 'a'}] = function() print('fa') end, "
          "[{Data = 'b'}] = function() print('fb') end})")
    assert p.send(tags=[("Action", "RS")], data="a")["Output"]["data"] == "fa"
    assert p.send(tags=[("Action", "RS")], data="b")["Output"]["data"] == "fb"
    assert p.send(tags=[("Action", "RS")], data="c")["Output"]["data"] == ""
    assert p.out("#Inbox") == "1"


def test_10_40_41_once_is_prepended(p):
    p.out("Handlers.once('o1', {Action = 'X'}, function() print('o1') end)")
    p.out("Handlers.once({Action = 'X'}, function() print('_once_0') end)")
    assert p.send(tags=[("Action", "X")])["Output"]["data"] == "_once_0"
    assert p.send(tags=[("Action", "X")])["Output"]["data"] == "o1"
    assert "New Message" in p.send(tags=[("Action", "X")])["Output"]["data"]
    p.out("Handlers.once('ev', {Action = 'Eval'}, function() print('once first') end)")
    assert p.eval("1 + 1")["Output"]["data"] == "once first"


def test_10_42_max_runs_inf(p):
    p.out("Handlers.add('inf', 'I', function() print('i') end, 'inf')")
    for _ in range(3):
        assert p.send(tags=[("Action", "I")])["Output"]["data"] == "i"


def test_10_43_before_missing_is_noop(p):
    before = p.out("#Handlers.list")
    p.out("Handlers.before('missing').add('x', 'X', function() end)")
    assert p.out("#Handlers.list") == before


def test_10_45_cleared_list_gets_system_handlers_again(p):
    p.out("Handlers.list = {}")
    assert p.out("local t = {} for _, h in ipairs(Handlers.list) do t[#t+1] = h.name end return table.concat(t, ',')") \
        == "_eval,_default"


def test_10_47_continue_accepts_table_spec(p):
    p.out("Handlers.add('c', Handlers.utils.continue({Action = 'C'}), function() print('C1') end)")
    p.out("Handlers.add('c2', 'C', function() print('C2') end)")
    assert p.send(tags=[("Action", "C")])["Output"]["data"] == "C1\nC2"


def test_10_48_reply_with_table(p):
    p.out("Handlers.add('r', 'R', Handlers.utils.reply({Data = 'pong', Extra = 'e'}))")
    msg = p.send(sender="FRED", tags=[("Action", "R")])["Messages"][0]
    assert msg["Target"] == "FRED" and msg["Data"] == "pong"
    assert {"name": "Extra", "value": "e"} in msg["Tags"]


def test_10_50_53_send_shapes(p):
    m = p.eval("Send({Target='X', Action='Ping', Data='hi', Quantity=100})")["Messages"][0]
    assert m["Anchor"] == "00000000000000000000000000000001"
    assert m["Tags"][:4] == [{"name": "Data-Protocol", "value": "ao"}, {"name": "Variant", "value": "ao.TN.1"},
                             {"name": "Type", "value": "Message"}, {"name": "Reference", "value": "1"}]
    assert {"name": "Quantity", "value": 100} in m["Tags"]
    m = p.eval("Send({Target='AOS', Data={foo='bar'}})")["Messages"][0]
    assert json.loads(m["Data"]) == {"foo": "bar"}
    assert {"name": "Content-Type", "value": "application/json"} in m["Tags"]


def test_10_54_ao_send_tags_map_and_error(p):
    m = p.eval("ao.send({Target='T', Tags={Y='2'}})")["Messages"][0]
    assert m["Tags"][4] == {"name": "Y", "value": "2"}
    assert p.eval("ao.send('x')")["Error"].endswith("msg should be a table")


def test_10_55_one_shared_reference_counter(p):
    p.eval("Spawn('M', {})")
    p.eval("Spawn('M', {})")
    p.out("Handlers.add('f', 'F', function(m) m.forward('OTHER') end)")
    m = p.send(tags=[("Action", "F")])["Messages"][0]
    assert m["Anchor"] == "0" * 31 + "3"


def test_10_56_57_spawn_shapes(p):
    s = p.eval("Spawn('MOD', {Data={x=1}, Tags={Foo='bar'}, Custom='c'})")["Spawns"][0]
    assert "Target" not in s and json.loads(s["Data"]) == {"x": 1}
    tags = {t["name"]: t["value"] for t in s["Tags"]}
    assert tags["Type"] == "Process" and tags["From-Process"] == "AOS" and tags["From-Module"] == "WOOPAWOOPA"
    assert tags["Module"] == "MOD" and tags["Foo"] == "bar" and tags["Custom"] == "c"
    assert tags["Content-Type"] == "application/json"
    s = p.eval("Spawn({})")["Spawns"][0]
    assert s["Data"] == "NODATA" and {"name": "Module", "value": "WOOPAWOOPA"} in s["Tags"]


def test_10_60_assignables(p):
    assert p.out("ao.addAssignable('foobar', function() return true end); "
                 "ao.addAssignable('foobar', function() return true end); return #ao.assignables") == "1"
    assert p.eval("ao.addAssignable(1234, function() end)")["Error"].endswith("MatchSpec name MUST be a string")
    assert p.eval("ao.removeAssignable({})")["Error"].endswith("index MUST be a number")


def test_10_61_reply_references(p):
    p.out("Handlers.add('r', 'R', function(m) m.reply({Data = 'ok'}) end)")
    m = p.send(sender="ALICE", tags=[("Action", "R"), ("X-Reference", "7")])["Messages"][0]
    assert m["Target"] == "ALICE" and {"name": "X-Reference", "value": "7"} in m["Tags"]
    m = p.send(sender="ALICE", tags=[("Action", "R"), ("Reference", "9"), ("Reply-To", "ZED")])["Messages"][0]
    assert m["Target"] == "ZED" and {"name": "X-Reference", "value": "9"} in m["Tags"]


def test_10_63_handler_waits_for_answer(p):
    p.out("Handlers.add('w', 'Wait', function(m) print('before'); "
          "local r = ao.send({Target='PEER', Action='Q'}).receive(); print('got answer'); m.reply({Data = r.Data}) end)")
    res = p.send(sender="ALICE", tags=[("Action", "Wait")])
    assert res["Output"]["data"] == "before" and len(res["Messages"]) == 1
    assert p.out("#Inbox") == "1"
    assert "_once_0" in p.out("local t = {} for _, h in ipairs(Handlers.list) do t[#t+1] = h.name end "
                              "return table.concat(t, ',')")
    assert "New Message" in p.send(sender="PEER", data="unrelated")["Output"]["data"]
    res = p.send(sender="PEER", data="42", tags=[("X-Reference", "1")])
    assert res["Output"]["data"] == "got answer"
    assert res["Messages"][0]["Target"] == "ALICE" and res["Messages"][0]["Data"] == "42"


def test_10_64_receive_in_eval(p):
    res = p.eval("print('sent'); local m = Handlers.receive({Action = 'Ans'}); print('resumed with ' .. m.Data); "
                 "return 'evalret'")
    assert res["Output"]["data"] == "sent"
    res = p.send(data="ans", tags=[("Action", "Ans")])
    assert res["Output"]["data"] == "resumed with ans\nevalret"


def test_10_67_inbox_cap(p):
    p.out("for i = #Inbox + 1, 10000 do Inbox[i] = {Data = tostring(i)} end")
    first = p.out("Inbox[2].Data")
    p.send(data="newest")
    assert p.out("#Inbox .. ' ' .. Inbox[#Inbox].Data .. ' ' .. Inbox[1].Data") == f"10000 newest {first}"


def test_10_69_70_boot():
    tags = [("Name", "Thomas"), ("Module", "WOOPAWOOPA"), ("Type", "Process"), ("On-Boot", "Data")]
    q = Proc(env_tags=[("Type", "Process"), ("On-Boot", "Data")], boot_tags=tags,
             boot_data='X = 41 + 1\nprint("booted")')
    assert q.boot["Output"] == {"data": "booted", "prompt": q.boot["Output"]["prompt"], "print": True}
    assert q.out("X .. ' ' .. #Inbox") == "42 1"
    r = Proc(env_tags=[("Type", "Process")], boot_tags=[("Name", "Thomas"), ("Module", "WOOPAWOOPA"), ("Type", "Process")])
    assert r.boot["Output"]["data"] == "" and r.boot["Output"]["print"] is True
    assert r.out("#Inbox") == "1"


def test_10_71_authorities_and_parent_owner():
    q = Proc(env_tags=[("From-Process", "PARENT"), ("Authority", "AUTH1"), ("Authority", "AUTH2,AUTH3")])
    res = q.eval("Owner .. ' ' .. Name .. ' ' .. table.concat(ao.authorities, ' ')", sender="PARENT")
    assert res["Output"]["data"] == "PARENT Thomas AUTH1 AUTH2 AUTH3"
    assert "New Message" in q.eval("1")["Output"]["data"]  # FOOBAR is no longer the owner


def test_10_73_assignment_check(p):
    res = p.send(target="NOT_AOS", data="x", sender="BOB")
    assert res["Messages"][0]["Target"] == "BOB"
    assert res["Messages"][0]["Data"] == "Assignment is not trusted by this process!"
    p.out("ao.addAssignable('any', function(m) return true end)")
    assert p.eval("2 + 2", target="NOT_AOS")["Output"]["data"] == "4"


def test_10_74_to_80_print_and_stringify(p):
    assert p.out("print(true); print(nil); print(3); print('s'); print(1.5)") == \
        "\x1b[34mtrue\x1b[0m\n\x1b[31mnil\x1b[0m\n\x1b[32m3\x1b[0m\ns\n\x1b[32m1.5\x1b[0m"
    assert p.out("print('a', 'b')") == "a"
    with pytest.raises(HandleError):
        p.eval("print(print)")
    assert p.out("print({a=1})") == "{\n   \x1b[31ma\x1b[0m = \x1b[34m1\x1b[0m\n}"
    assert p.out("return {}") == "{  }"
    assert plain(p.out("return {{a=1},2}")) == "{\n  {\n     a = 1\n  },\n  2\n }"
    assert plain(p.out("t={}; t.self=t; t.x=1; return t")) == "{\n   self = <circular reference>,\n   x = 1\n}"


def test_10_81_82_dump(p):
    assert p.out('return Dump({b=1, a="x", [1]=true, [2]={}, ["with space"]=2, ["end"]=3})') == \
        '{\n    [1] = true,\n    [2] = {},\n    ["end"] = 3,\n    ["with space"] = 2,\n    a = "x",\n    b = 1\n}'
    assert p.out('return Dump("a\\nb")') == '"a\\\nb"'
    assert p.out("return Dump({1,2}, 0)") == "{ [1] = 1, [2] = 2 }"


def test_10_83_to_87_json(p):
    assert p.out("json.encode({})") == "[]"
    assert p.out("json.encode({a={}, b={{}}})") == '{"a":[],"b":[[]]}'
    assert p.out("json.encode({a=1, f=print})") == '{"a":1}'
    assert p.out("json.encode(123456789012345) .. ' ' .. json.encode(2^53) .. ' ' .. json.encode(math.maxinteger)") \
        == "1.2345678901234e+14 9.007199254741e+15 9.2233720368548e+18"
    assert p.out("json.encode(0.1+0.2) .. ' ' .. json.encode(3.0) .. ' ' .. json.encode(-0.0)") == "0.3 3 -0"
    assert p.out('json.encode("a/b\\"\\n\\1")') == '"a/b\\"\\n\\u0001"'
    assert p.eval("json.encode({1, nil, 3})")["Error"].endswith("invalid table: sparse array")
    assert p.out("local t = json.decode('{\"a\":1,\"b\":1.5,\"e\":1e2,\"f\":-0}') "
                 "return math.type(t.a) .. math.type(t.b) .. math.type(t.e) .. t.e .. ' ' .. t.f") \
        == "integerfloatfloat100.0 0"
    assert p.eval("json.decode('[1] x')")["Error"].endswith("trailing garbage at line 1 col 5")


def test_10_93_curry_keeps_aos_shape(p):
    assert p.out("Utils.reduce(function(a, b) return a + b end)(0)({1,2,3})") == "6"
    assert p.out("local add3 = Utils.curry(function(a, b, c) return a + b + c end); return add3(1)(2)(3)") == "6"


def test_10_94_95_utils(p):
    assert p.out("Utils.compose(function(x) return x + 1 end, function(x) return x * 2 end, "
                 "function(x) return x - 1 end)(3)") == "5"
    assert p.out("table.concat(Utils.map(function(x, i) return x .. i end, {'a', 'b'}), ',')") == "a1,b2"
    assert "argument should be a table that is an array" in p.eval("Utils.includes(5, {a=5})")["Error"]
    assert p.out("Utils.matchesPattern('abc', 'ABC')") == "true"


def test_10_98_capitalize_and_normalize(p):
    assert p.out("require('.utils').capitalize('foo-bar')") == "Foo-bar"
    p.out("Handlers.add('n', 'N', function(m) print(m.Tags['Data-Protocol'] .. ' ' .. m['X-Custom-Tag']) end)")
    assert p.send(tags=[("action", "N"), ("data_PROTOCOL", "ao"), ("x_custom_tag", "c")])["Output"]["data"] == "ao c"


def test_10_99_101_103(p):
    assert p.eval("assert(1 == 1, 'fine')")["Error"] == "fine"
    assert p.out("Version()") == "version: 2.0.4"
    assert plain(p.eval("1")["Output"]["prompt"]) == "Thomas@aos-2.0.4[Inbox:1]> "
    p.out("Handlers.add('ro', 'RO', function(m) print(tostring(m['Read-Only']) .. ' ' .. m.Tags['Read-Only']) end)")
    assert p.send(tags=[("Action", "RO"), ("Read-Only", "true")])["Output"]["data"] == "nil true"


def test_10_102_require_ao_alias(p):
    assert p.out("tostring(require('ao') == require('.ao')) .. ' ' .. type(json)") == "true table"


def test_10_104_error_after_receive_is_raised(p):
    p.eval("local m = Receive({Action = 'Go'}); error('after resume')")
    res = p.send(tags=[("Action", "Go")])
    assert "after resume" in res["Error"]
