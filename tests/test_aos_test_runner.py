"""`aos test`: the runner (discovery, busted's API, luassert, reports, JUnit XML, TAP, exit codes)."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aos_py.testing.runner import describe_failure
from aos_py.testing.runner import test_command as aos_test
from aos_py.testing.spec import run_file

PASSING = """\
describe("math", function()
  it("adds", function()
    assert.are.equal(2, 1 + 1)
  end)
  it("compares tables", function()
    assert.are.same({ a = { 1, 2 } }, { a = { 1, 2 } })
  end)
end)
"""

FAILING = """\
describe("numbers", function()
  it("are unequal", function()
    local answer = 41
    assert.are.equal(42, answer)
  end)
  it("pass too", function()
    assert.is_true(true)
  end)
end)
"""

ERRORING = """\
describe("a table", function()
  it("is indexed while nil", function()
    local t = nil
    return t.field
  end)
end)
"""

PENDING = """\
describe("later", function()
  pending("write this one")
  it("has no body yet")
  it("runs", function() end)
end)
"""

SYNTAX = """\
describe("broken", function()
  it("never runs", function()
    assert.is_true(true
  end)
end)
"""


def write(root: Path, name: str, text: str) -> str:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return name


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = aos_test(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_passing_file_exits_0_with_the_summary_line(project, capsys):
    write(project, "spec/math_spec.lua", PASSING)
    code, out, _ = run(capsys, "-j", "1")
    assert code == 0
    assert out.splitlines() == ["2 passed, 0 failed"]


def test_failing_test_is_one_line_with_location_name_expected_and_actual(project, capsys):
    write(project, "spec/numbers_spec.lua", FAILING)
    code, out, _ = run(capsys, "-j", "1")
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "1 passed, 1 failed"
    assert lines[0] == ("FAIL spec/numbers_spec.lua:4: numbers are unequal: Expected objects to be equal. "
                        "(expected: 42, actual: 41)")
    assert len(lines) == 2


def test_lua_error_outside_an_assertion_is_an_error(project, capsys):
    write(project, "test/table_test.lua", ERRORING)
    code, out, _ = run(capsys, "-j", "1")
    assert code == 1
    assert out.splitlines() == [
        "ERROR test/table_test.lua:4: a table is indexed while nil: attempt to index a nil value (local 't')",
        "0 passed, 1 failed",
    ]


def test_pending_tests_are_skipped_and_counted(project, capsys):
    write(project, "spec/later_spec.lua", PENDING)
    code, out, _ = run(capsys, "-j", "1", "--verbose")
    assert code == 0
    lines = out.splitlines()
    assert lines[-1] == "1 passed, 0 failed, 2 skipped"
    assert "SKIP spec/later_spec.lua:2: later write this one" in lines
    assert "SKIP spec/later_spec.lua:3: later has no body yet" in lines
    assert any(line.startswith("PASS spec/later_spec.lua:4: later runs (") for line in lines)


def test_syntax_error_fails_the_file(project, capsys):
    write(project, "spec/broken_spec.lua", SYNTAX)
    write(project, "spec/math_spec.lua", PASSING)
    code, out, _ = run(capsys, "-j", "1")
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "2 passed, 1 failed"
    assert lines[0].startswith("ERROR spec/broken_spec.lua:4: (loading spec/broken_spec.lua): ")
    assert "')' expected" in lines[0]


def test_all_together_in_parallel_give_the_same_report_in_file_order(project, capsys):
    for name, text in [("a_spec.lua", PASSING), ("b_spec.lua", FAILING), ("c_spec.lua", ERRORING),
                       ("d_spec.lua", PENDING), ("e_spec.lua", SYNTAX)]:
        write(project, f"spec/{name}", text)
    code1, out1, _ = run(capsys, "-j", "1")
    code2, out2, _ = run(capsys, "-j", "2")
    assert code1 == code2 == 1
    assert out1 == out2
    lines = out1.splitlines()
    assert lines[-1] == "4 passed, 3 failed, 2 skipped"
    assert [ln.split(" ", 2)[1].split(":")[0] for ln in lines[:-1]] == [
        "spec/b_spec.lua", "spec/c_spec.lua", "spec/e_spec.lua"]


def test_usage_errors_exit_2(project, capsys):
    code, _, err = run(capsys)
    assert code == 2 and "no spec/ or test/ directory" in err
    code, _, err = run(capsys, "missing_dir")
    assert code == 2 and "no such file or directory: missing_dir" in err
    (project / "empty").mkdir()
    code, _, err = run(capsys, "empty")
    assert code == 2 and "no spec files" in err
    write(project, "spec/math_spec.lua", PASSING)
    assert run(capsys, "--no-such-flag")[0] == 2
    assert run(capsys, "-j", "0")[0] == 2
    assert run(capsys, "-j", "many")[0] == 2
    assert run(capsys, "--junit", str(project / "no" / "dir" / "r.xml"))[0] == 2


def test_filter_bail_and_explicit_files(project, capsys):
    write(project, "spec/a_spec.lua", FAILING)
    write(project, "spec/b_spec.lua", PASSING)
    code, out, _ = run(capsys, "-j", "1", "--filter", "pass too")
    assert (code, out.splitlines()) == (0, ["1 passed, 0 failed"])
    code, out, _ = run(capsys, "-j", "1", "--filter", "^math ad")      # a Lua pattern
    assert (code, out.splitlines()) == (0, ["1 passed, 0 failed"])
    code, out, _ = run(capsys, "-j", "2", "--bail")
    assert code == 1 and out.splitlines()[-1] == "0 passed, 1 failed"
    code, out, _ = run(capsys, "-j", "1", "spec/b_spec.lua")
    assert (code, out.splitlines()) == (0, ["2 passed, 0 failed"])
    write(project, "elsewhere/thing.lua", PASSING)          # a named file runs whatever its name
    assert run(capsys, "-j", "1", "elsewhere/thing.lua")[1].splitlines() == ["2 passed, 0 failed"]


def test_junit_xml_report(project, capsys):
    for name, text in [("a_spec.lua", PASSING), ("b_spec.lua", FAILING), ("c_spec.lua", ERRORING),
                       ("d_spec.lua", PENDING), ("e_spec.lua", SYNTAX)]:
        write(project, f"spec/{name}", text)
    code, _, _ = run(capsys, "-j", "2", "--junit", "report.xml")
    assert code == 1
    root = ET.parse(project / "report.xml").getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("9", "1", "2", "2")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {f"spec/{n}_spec.lua" for n in "abcde"}
    fail = suites["spec/b_spec.lua"].find("testcase[@name='numbers are unequal']/failure")
    assert fail is not None and fail.get("message") == "Expected objects to be equal."
    assert "expected: 42" in fail.text and "actual: 41" in fail.text
    err = suites["spec/c_spec.lua"].find("testcase/error")
    assert "attempt to index a nil value" in err.get("message")
    assert len(suites["spec/d_spec.lua"].findall("testcase/skipped")) == 2
    assert suites["spec/e_spec.lua"].find("testcase/error") is not None
    case = suites["spec/a_spec.lua"].find("testcase")
    assert case.get("classname") == "spec.a_spec" and case.get("file") == "spec/a_spec.lua" and case.get("line") == "2"


def test_tap_report(project, capsys):
    write(project, "spec/a_spec.lua", FAILING)
    write(project, "spec/b_spec.lua", PENDING)
    code, out, err = run(capsys, "-j", "1", "--tap")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "TAP version 13"
    assert lines[-1] == "1..5"
    assert "not ok 1 - spec/a_spec.lua: numbers are unequal" in lines
    assert "ok 2 - spec/a_spec.lua: numbers pass too" in lines
    assert "ok 3 - spec/b_spec.lua: later write this one # SKIP" in lines
    i = lines.index("not ok 1 - spec/a_spec.lua: numbers are unequal")
    assert lines[i + 1] == "  ---" and '  expected: "42"' in lines[i + 1:i + 8] and '  at: "spec/a_spec.lua:4"' in lines[i + 1:i + 8]
    assert err.splitlines()[-1] == "2 passed, 1 failed, 2 skipped"


def test_print_in_a_spec_is_shown_where_it_happened(project, capsys):
    write(project, "spec/p_spec.lua", 'print("hello from", 42)\nit("x", function() print("inside") end)\n'
                                      'it("y", function() print("in y") end)\n')
    code, out, _ = run(capsys, "-j", "1", "-v")
    assert code == 0
    lines = out.splitlines()
    assert [ln.split(" (")[0] for ln in lines] == ["hello from\t42", "inside", "PASS spec/p_spec.lua:2: x", "in y",
                                                   "PASS spec/p_spec.lua:3: y", "2 passed, 0 failed"]


BUSTED = """\
local log = {}
local function note(s) log[#log + 1] = s end

describe("outer", function()
  setup(function() note("setup") end)
  teardown(function() note("teardown") end)
  before_each(function() note("before outer") end)
  after_each(function() note("after outer") end)

  describe("inner", function()
    before_each(function() note("before inner") end)
    after_each(function() note("after inner") end)
    it("runs hooks outside in, then inside out", function()
      note("test")
      finally(function() note("finally") end)
    end)
  end)

  it("sees the order", function()
    assert.are.same({ "setup", "before outer", "before inner", "test", "after inner", "after outer", "finally",
      "before outer" }, log)
  end)
end)

context("luassert", function()
  it("has the common forms and their spellings", function()
    assert.are.equal(1, 1); assert.equal("a", "a"); assert.equals(true, true); assert.is_equal(2, 2)
    assert.are_not.equal(1, 2); assert.is_not.equal(1, 2); assert.not_equal(1, 2); assert.are_not_equal(1, 2)
    assert.are.same({ 1, { x = "y" } }, { 1, { x = "y" } }); assert.same({}, {}); assert.is_not.same({ 1 }, { 2 })
    assert.is_nil(nil); assert.is_not_nil(0); assert.not_nil(""); assert.is.Nil(nil)
    assert.is_true(true); assert.is_false(false); assert.True(true); assert.is_not_true(1)
    assert.truthy(0); assert.is_truthy(""); assert.falsy(nil); assert.is_falsy(false); assert.is_not.falsy(1)
    assert.matches("^he", "hello"); assert.match("l+", "hello"); assert.is_not.matching("^x", "hello")
    assert.matches("a.b", "a.b", 1, true)
    assert.has_error(function() error("boom") end)
    assert.has_error(function() error("boom") end, "boom")
    assert.has.errors(function() error({ code = 1 }) end, { code = 1 })
    assert.error_matches(function() error("bad thing 42") end, "thing %d+")
    assert.has_no.errors(function() end); assert.has_no_error(function() end)
    assert.is_string("s"); assert.is_number(1); assert.is_table({}); assert.is_function(print)
    assert.is_boolean(false); assert.near(1.0, 1.05, 0.1); assert.unique({ 1, 2, 3 })
    assert(true, "plain assert")
    local a, b = assert(1, "m")
    assert.are.equal(1, a)
  end)

  it("spies and stubs", function()
    local s = spy.new(function(x) return x * 2 end)
    assert.are.equal(4, s(2))
    assert.spy(s).was.called(1)
    assert.spy(s).was_called_with(2)
    assert.spy(s).was_not_called_with(3)
    local t = { f = function() return "real" end }
    local st = stub(t, "f", "fake")
    assert.are.equal("fake", t.f())
    assert.stub(st).was.called()
    st:revert()
    assert.are.equal("real", t.f())
    local sp = spy.on(t, "f")
    t.f("arg")
    assert.spy(sp).was.called_with(match._)
    assert.spy(sp).was.called_with(match.is_string())
  end)

  it("pending inside a test skips it", function()
    pending("not today")
    error("never reached")
  end)
end)

insulate("busted module", function()
  it("can be required", function()
    local busted = require("busted")
    assert.is_function(busted.it)
    assert.is_table(require("luassert"))
    require("busted.runner")()
  end)
end)
"""


def test_busted_hooks_and_luassert_forms(project):
    write(project, "spec/busted_spec.lua", BUSTED)
    res = run_file("spec/busted_spec.lua")
    got = {r.name: r for r in res.records}
    assert {n: r.status for n, r in got.items()} == {
        "outer inner runs hooks outside in, then inside out": "pass",
        "outer sees the order": "pass",
        "luassert has the common forms and their spellings": "pass",
        "luassert spies and stubs": "pass",
        "luassert pending inside a test skips it": "pending",
        "busted module can be required": "pass",
    }, [(r.name, r.message) for r in res.records if r.status != "pass"]
    assert got["luassert pending inside a test skips it"].message == "not today"


FAILURES = """\
describe("f", function()
  it("equal", function() assert.are.equal("a", "b") end)
  it("same", function() assert.are.same({ x = { 1, 2 } }, { x = { 1, 3 } }) end)
  it("not nil", function() assert.is_not_nil(nil) end)
  it("is nil", function() assert.is_nil(5) end)
  it("true", function() assert.is_true(false) end)
  it("truthy", function() assert.truthy(nil) end)
  it("has error", function() assert.has_error(function() end) end)
  it("no error", function() assert.has_no.errors(function() error("oops") end) end)
  it("error message", function() assert.has_error(function() error("x") end, "y") end)
  it("matches", function() assert.matches("^z", "abc") end)
  it("custom", function() assert.are.equal(1, 2, "the count") end)
  it("plain", function() assert(false, "plain message") end)
  it("not equal", function() assert.are_not.equal(1, 1) end)
  it("setup fails", function() end)
  describe("broken setup", function()
    setup(function() error("no database") end)
    it("cannot run", function() end)
  end)
end)
"""


def test_failure_messages(project):
    write(project, "spec/f_spec.lua", FAILURES)
    res = run_file("spec/f_spec.lua")
    lines = {r.name.split(" ", 1)[1]: describe_failure(r) for r in res.records if r.status != "pass"}
    assert lines["equal"] == 'FAIL spec/f_spec.lua:2: f equal: Expected objects to be equal. (expected: "a", actual: "b")'
    assert lines["same"] == ("FAIL spec/f_spec.lua:3: f same: Expected objects to be the same (first difference at "
                             "[\"x\"][2]). (expected: { x = { 1, 2 } }, actual: { x = { 1, 3 } })")
    assert lines["not nil"].endswith("(expected: not nil, actual: nil)")
    assert lines["is nil"].endswith("(expected: nil, actual: 5)")
    assert lines["true"].endswith("(expected: true, actual: false)")
    assert lines["truthy"].endswith("(expected: truthy, actual: nil)")
    assert lines["has error"].endswith("Expected an error. (expected: an error, actual: no error)")
    assert lines["no error"].endswith('Expected no error. (expected: no error, actual: error "oops")')
    assert lines["error message"].endswith('(expected: error "y", actual: error "x")')
    assert lines["matches"].endswith('(expected: matching "^z", actual: "abc")')
    assert lines["custom"] == "FAIL spec/f_spec.lua:12: f custom: the count (expected: 1, actual: 2)"
    assert lines["plain"] == "FAIL spec/f_spec.lua:13: f plain: plain message"
    assert lines["not equal"].endswith("(expected: not 1, actual: 1)")
    assert lines["broken setup cannot run"].startswith("ERROR spec/f_spec.lua:17: f broken setup cannot run: setup failed:")
    assert "no database" in lines["broken setup cannot run"]
    assert "setup fails" not in lines


def test_a_file_that_kills_its_worker_fails_alone(project, capsys):
    write(project, "spec/a_spec.lua", 'it("dies", function() os.execute("kill -9 $PPID") end)\n')
    write(project, "spec/b_spec.lua", PASSING)
    write(project, "spec/c_spec.lua", 'it("exits", function() os.exit(0) end)\n')
    code, out, _ = run(capsys, "-j", "2")
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == "ERROR spec/a_spec.lua: (running spec/a_spec.lua): the process running this file died (os.exit, a crash, a kill)"
    assert lines[1].startswith("ERROR spec/c_spec.lua:1: exits: os.exit is not available in a spec")
    assert lines[-1] == "2 passed, 2 failed"
