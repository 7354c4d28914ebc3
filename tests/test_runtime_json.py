"""The JSON the host gets back from handle(): json.encode_result must say what json.encode says."""

from __future__ import annotations

import json

import pytest

from aos_py.runtime import ProcessRuntime

RESULTS = [
    "{}",
    "{Output = {data = 'x', prompt = 'p', print = true}, Messages = {}, Spawns = {}, Assignments = {}}",
    "{Error = 'boom'}",
    "{Error = 2}",
    "{Output = 'plain', Messages = {{Target = 'T', Data = 'd', Anchor = '01', "
    "Tags = {{name = 'a', value = 'b'}, {name = 'n', value = 5}, {name = 'x', value = 'y', extra = true}}}}}",
    "{Output = {}, Messages = {{Data = {k = 1}, Tags = {}}}, Spawns = {{Data = 'NODATA', Tags = {{name = 'Type', value = 'Process'}}}}}",
    "{Messages = {{}}, Spawns = {}}",
    "{Messages = {{Target = 'T', Custom = 'kept'}}}",
    "{Messages = {{Target = 'T', f = print}}}",
    "{Output = {data = '\\27[31mred\\n\"q\"'}, Assignments = {{Processes = {'p1'}, Message = 'm'}}}",
    "{Output = {data = 'x'}, Other = 1}",
    "{Messages = 'not a list'}",
]


@pytest.fixture(scope="module")
def rt():
    return ProcessRuntime()


@pytest.mark.parametrize("lua_value", RESULTS)
def test_encode_result_matches_encode(rt, lua_value):
    both = rt.eval_lua(f"local json = require('json'); local r = {lua_value}; "
                       "return json.encode(r), json.encode_result(r)")
    general, result = (json.loads(t) for t in both)
    assert result == general


@pytest.mark.parametrize("lua_value,error", [
    ("local m = {Target = 'T'}; m.Data = m; return {Messages = {m}}", "circular reference"),
    ("return {Messages = {[1] = {Target = 'a'}, [3] = {Target = 'b'}}}", "sparse array"),
    ("return {Output = {[true] = 1}}", "mixed or invalid key types"),
    ("return {Messages = {{Target = 'T', Data = 0/0}}}", "unexpected number value"),
])
def test_encode_result_errors_like_encode(rt, lua_value, error):
    general, result = rt.eval_lua(
        "local json = require('json'); local function r() " + lua_value + " end; "
        "local ok1, e1 = pcall(json.encode, r()); local ok2, e2 = pcall(json.encode_result, r()); "
        "return tostring(ok1) .. ' ' .. tostring(e1), tostring(ok2) .. ' ' .. tostring(e2)")
    assert general == result
    assert general.startswith(b"false ") and error.encode() in general
