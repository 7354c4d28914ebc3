"""How message values cross into Lua: table-constructor source and flat arguments."""

from __future__ import annotations

import lupa.lua53 as lua53
import pytest

from aos_py.runtime import HandleError, ProcessRuntime
from aos_py.runtime.luasrc import LuaSourceError, flat_args, to_lua


@pytest.fixture(scope="module")
def lua():
    return lua53.LuaRuntime(register_eval=False, encoding=None)


def roundtrip(lua, value):
    """Value -> constructor -> Lua -> a Lua-side description (type and text)."""
    describe = lua.eval(b"""function(src)
        local v = load(src, '=t', 't', nil)()
        local function d(x)
          if type(x) == 'table' then
            local keys = {}
            for k in pairs(x) do keys[#keys + 1] = k end
            table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
            local parts = {}
            for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. '=' .. d(x[k]) end
            return '{' .. table.concat(parts, ',') .. '}'
          end
          return (math.type(x) or type(x)) .. ':' .. tostring(x)
        end
        return d(v)
    end""")
    return describe(to_lua(value)).decode("utf-8", "surrogateescape")


def test_scalars_follow_json_semantics(lua):
    assert roundtrip(lua, 5) == "integer:5"
    assert roundtrip(lua, 3.0) == "integer:3"  # JSON has no integral floats
    assert roundtrip(lua, 1.5) == "float:1.5"
    assert roundtrip(lua, 1e20) == "float:1e+20"
    assert roundtrip(lua, -(2**63)) == "integer:-9223372036854775808"
    assert roundtrip(lua, 2**64) == "float:1.844674407371e+19"
    assert roundtrip(lua, float("inf")) == "float:inf"
    assert roundtrip(lua, True) == "boolean:true"
    assert roundtrip(lua, None) == "nil:nil"


def test_strings_and_bytes_keep_every_byte(lua):
    text = 'quote" back\\slash\nnew\x00nul\x7f é 😀'
    assert roundtrip(lua, text) == "string:" + text
    raw = bytes(range(256))
    describe = lua.eval(b"function(src) local s = load(src, '=t', 't', nil)() return #s, s:byte(1), s:byte(256) end")
    assert tuple(describe(to_lua(raw))) == (256, 0, 255)


def test_nested_structures(lua):
    assert roundtrip(lua, {"a": [1, "x", {"b": None}], "c": {"d": False}}) == \
        "{a={1=integer:1,2=string:x,3={}},c={d=boolean:false}}"


def test_unsupported_values_are_refused():
    with pytest.raises(LuaSourceError, match="Extra: values of type object"):
        to_lua({"Extra": object()})
    with pytest.raises(LuaSourceError, match="not a string or an integer"):
        to_lua({(1, 2): "x"})
    deep: list = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(LuaSourceError, match="nested more than"):
        to_lua({"Deep": deep})


def test_flat_args_only_for_plain_messages():
    plain = {"Id": "M", "Timestamp": 5, "Cron": False, "Data": "x",
             "Tags": [{"name": "Action", "value": "Ping"}]}
    assert flat_args(plain) == [4, 1, b"Id", b"M", b"Timestamp", 5, b"Cron", False, b"Data", b"x",
                                b"Action", b"Ping"]
    assert flat_args({"Id": "M"}) == [1, -1, b"Id", b"M"]
    assert flat_args({"Id": "M", "Extra": {"a": 1}}) is None
    assert flat_args({"Id": "M", "Tags": [{"name": "A", "value": 1}]}) is None
    assert flat_args({"Id": "M", "Tags": [{"name": "A", "value": "v", "x": 1}]}) is None


def test_nested_message_fields_reach_handlers():
    """Messages that are not flat take the constructor path and arrive intact."""
    env = {"Process": {"Id": "P", "Owner": "O", "Tags": [{"name": "Name", "value": "n"}]}}
    rt = ProcessRuntime()
    rt.handle({"Id": "P", "Target": "P", "Owner": "O", "From": "O", "Module": "M", "Block-Height": "1",
               "Timestamp": 1, "Tags": env["Process"]["Tags"]}, env)
    ev = {"Id": "E", "Target": "P", "Owner": "O", "From": "O", "Module": "M", "Block-Height": "2",
          "Timestamp": 2, "Tags": [{"name": "Action", "value": "Eval"}],
          "Data": "Handlers.add('n', 'N', function(m) print(m.Extra.list[2] .. ' ' .. tostring(m.Extra.flag)) end)"}
    rt.handle(ev, env)
    nested = {"Id": "X", "Target": "P", "Owner": "O", "From": "O", "Module": "M", "Block-Height": "3",
              "Timestamp": 3, "Tags": [{"name": "Action", "value": "N"}], "Extra": {"list": ["a", "b"], "flag": True}}
    assert flat_args(nested) is None
    assert rt.handle(nested, env)["Output"]["data"] == "b true"
    with pytest.raises(HandleError, match="invalid message"):
        rt.handle({"Id": "Y", "Bad": {1.5: "x"}}, env)
