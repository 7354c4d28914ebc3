"""Sandbox and limits of ProcessRuntime: what process code must never reach or do."""

from __future__ import annotations

import pytest
from process_harness import ProcessHarness
from process_harness import output_data as output

from aos_py.runtime import HandleError, ProcessRuntime

P = ProcessHarness(pid="SANDBOX-PROCESS", owner="SANDBOX-OWNER", name="sandbox", module="MOD",
                   msg_id="M", block_height="100", boot_tags=False)
PID, OWNER, ENV = P.pid, P.owner, P.env
msg, booted, evaluate = P.msg, P.booted, P.eval


@pytest.fixture
def rt():
    yield from P.running()


FORBIDDEN = [
    ('os.execute("echo hi")', "os.execute is not available"),
    ('os.exit(1)', "os.exit is not available"),
    ('os.remove("/tmp/x")', "os.remove is not available"),
    ('os.rename("/tmp/x", "/tmp/y")', "os.rename is not available"),
    ('os.tmpname()', "os.tmpname is not available"),
    ('io.popen("ls")', "io.popen is not available"),
    ('io.tmpfile()', "io.tmpfile is not available"),
    ('io.open("/etc/passwd")', "io.open: only /data/<id> paths"),
    ('io.open("../../etc/passwd")', "io.open: only /data/<id> paths"),
    ('io.lines("/etc/hostname")', "io.open: only /data/<id> paths"),
    ('io.lines()', "standard input is not available"),
    ('loadfile("/etc/passwd")', "loadfile: only /data/<id> paths"),
    ('dofile("/etc/passwd")', "loadfile: only /data/<id> paths"),
    ('package.loadlib("libc.so.6", "system")', "package.loadlib is not available"),
    ('package.searchpath("x", "/?.lua")', "package.searchpath is not available"),
    ('debug.sethook()', "debug.sethook is not available"),
    ('debug.getregistry()', "debug.getregistry is not available"),
    ('debug.getupvalue(print, 1)', "debug.getupvalue is not available"),
    ('debug.getlocal(1, 1)', "debug.getlocal is not available"),
    ('require("socket")', "module 'socket' not found"),
    ('require("_bridge")', "module '_bridge' not found"),
    ('require("..etc.hostname")', "module '..etc.hostname' not found"),
    ('require("..tests.compat.scoring")', "module '..tests.compat.scoring' not found"),
]


@pytest.mark.parametrize("code,expected", FORBIDDEN, ids=[c for c, _ in FORBIDDEN])
def test_forbidden_call_fails_with_clear_error(rt, code, expected):
    res = evaluate(rt, code)
    assert "Error" in res
    assert expected in res["Error"]
    # the process is still usable
    assert output(evaluate(rt, "1 + 1", 2)) == "2"


def test_no_python_object_reachable(rt):
    assert output(evaluate(rt, "tostring(python) .. ' ' .. tostring(package.loaded.python)")) == "nil nil"
    found = evaluate(rt, """
        local seen, hits = {}, {}
        local function walk(t, depth)
          if depth > 6 or seen[t] then return end
          seen[t] = true
          for k, v in pairs(t) do
            if type(v) == 'userdata' then hits[#hits + 1] = tostring(k) end
            if type(v) == 'table' then walk(v, depth + 1) end
          end
        end
        walk(_G, 0)
        return #hits""")
    assert output(found) == "0"


def test_binary_chunks_are_refused(rt):
    res = evaluate(rt, "load(string.dump(function() return 1 end))")
    assert res["Error"] == "attempt to load a binary chunk (mode is 't')"


def test_no_wall_clock(rt):
    assert output(evaluate(rt, "os.time()", 5)) == str(1700000000000 + 5)
    assert output(evaluate(rt, "os.clock()", 6)) == "0.0"
    assert output(evaluate(rt, "tostring(os.getenv('HOME'))", 7)) == "nil"
    # os.date without a time uses the message time (UTC), not the host clock
    assert output(evaluate(rt, "os.date('%Y-%m-%d %H:%M:%S')", 8)) == "2023-11-14 22:13:20"


def test_io_write_is_discarded(rt):
    assert output(evaluate(rt, "io.write('x'); io.stdout:write('y'); return 'done'")) == "done"


def test_runaway_loop_becomes_error_and_process_survives(rt):
    res = evaluate(rt, "while true do end")
    assert "compute budget exceeded" in res["Error"]
    assert res["GasUsed"] >= rt.compute_budget
    assert output(evaluate(rt, "1 + 1", 2)) == "2"


def test_budget_error_cannot_be_swallowed_by_pcall():
    rt = booted(compute_budget=2_000_000)
    res = evaluate(rt, "while true do pcall(function() while true do end end) end")
    assert "compute budget exceeded" in res["Error"]
    res = evaluate(rt, "local ok = false; for i = 1, 100 do ok = pcall(function() while true do end end) end; return ok", 2)
    assert "compute budget exceeded" in res["Error"]
    assert output(evaluate(rt, "1 + 1", 3)) == "2"


def test_budget_applies_inside_coroutines_and_handlers():
    rt = booted(compute_budget=2_000_000)
    res = evaluate(rt, "local f = coroutine.wrap(function() while true do end end); f()")
    assert "compute budget exceeded" in res["Error"]
    assert "Error" not in evaluate(rt, "Handlers.add('spin', 'Spin', function() while true do end end)", 2)
    res = rt.handle(msg(3, action="Spin"), ENV)
    assert "compute budget exceeded" in res["Error"]
    assert output(evaluate(rt, "1 + 1", 4)) == "2"


def test_budget_is_per_message():
    rt = booted(compute_budget=2_000_000)
    for n in range(1, 6):
        # each message does about a third of the budget: never exceeded
        assert output(evaluate(rt, "local s = 0 for i = 1, 200000 do s = s + i end return s", n)) == "20000100000"


def test_gas_used_grows_with_work(rt):
    small = evaluate(rt, "1 + 1")
    big = evaluate(rt, "local s = 0 for i = 1, 100000 do s = s + i end return s", 2)
    assert big["GasUsed"] > small["GasUsed"] + 100_000


def test_memory_limit_turns_into_error_and_process_survives():
    rt = booted(memory_limit=32 << 20)
    res = evaluate(rt, "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end")
    assert "Error" in res and "not enough memory" in res["Error"]
    assert output(evaluate(rt, "1 + 1", 2)) == "2"
    assert rt.memory_used() < 32 << 20


def test_memory_error_in_handler_gives_aos_error_output():
    rt = booted(memory_limit=32 << 20)
    assert "Error" not in evaluate(rt, "Handlers.add('hog', 'Hog', function() local t = {} "
                                       "for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end end)")
    res = rt.handle(msg(2, action="Hog"), ENV)
    assert "Error\x1b[90m handling message with Action = Hog" in res["Error"]
    assert "not enough memory" in res["Error"]
    assert output(evaluate(rt, "1 + 1", 3)) == "2"


def test_memory_limit_must_be_sane():
    with pytest.raises(ValueError, match="memory_limit"):
        ProcessRuntime(memory_limit=1000)
    with pytest.raises(ValueError, match="compute_budget"):
        ProcessRuntime(compute_budget=10)


def test_data_mount_is_read_only(tmp_path):
    data = tmp_path / "blob.txt"
    data.write_bytes(b"line one\nline two\n")
    rt = booted(data_resolver=lambda i: data if i == "DATA-ID-1" else None)
    assert output(evaluate(rt, "local f = io.open('/data/DATA-ID-1'); local s = f:read('a'); f:close(); return s")) \
        == "line one\nline two\n"
    assert output(evaluate(rt, "local n = 0 for l in io.lines('/data/DATA-ID-1') do n = n + 1 end return n", 2)) == "2"
    res = evaluate(rt, "io.open('/data/DATA-ID-1', 'w')", 3)
    assert "read-only" in res["Error"]
    res = evaluate(rt, "local f = io.open('/data/DATA-ID-1', 'rb'); return tostring(f:write('x'))", 4)
    assert output(res) == "nil"
    assert data.read_bytes() == b"line one\nline two\n"
    res = evaluate(rt, "io.open('/data/UNKNOWN')", 5)
    assert res["Error"] == "/data/UNKNOWN: No such file or directory"


def test_data_mount_without_resolver(rt):
    assert evaluate(rt, "io.open('/data/ANY')")["Error"] == "/data/ANY: No such file or directory"


def test_bad_message_changes_nothing(rt):
    assert output(evaluate(rt, "counter = 1")) == ""
    with pytest.raises(HandleError, match="cannot be sent to a process"):
        rt.handle(msg(2, "counter = 2", Extra=object()), ENV)
    with pytest.raises(HandleError, match="message dict"):
        rt.handle("not a message", ENV)  # type: ignore[arg-type]
    assert output(evaluate(rt, "counter", 3)) == "1"


def test_closed_runtime_refuses_messages():
    rt = booted()
    rt.close()
    with pytest.raises(HandleError, match="closed"):
        evaluate(rt, "1")
