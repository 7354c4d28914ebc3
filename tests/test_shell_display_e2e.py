"""End to end: how the shell shows things (issue 16: editor .print, error frames, bytes that are not UTF-8,
Ctrl-C, blueprints that need others, the scrollback prompt, unknown dot-commands, `--run` output).

The real `aos` program runs in a pseudo-terminal on a fresh data directory, as in test_repl_e2e.py.
"""

from __future__ import annotations

import re

import pytest
from process_harness import ProcessHarness
from test_repl_e2e import ANSI, Aos, script, value

from aos_py.repl import render
from aos_py.repl.bundle import build_bundle

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive aos in a pseudo-terminal")

FOOTER = "This error occurred while aos was evaluating the submitted code."


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("aosdisplay")


def raw_run(aos: Aos, line: str, expect: str) -> str:
    """Like Aos.run, but returns what the terminal received with its colour escapes."""
    aos.child.sendline(line)
    aos.child.expect(expect)
    seen = aos.child.before + aos.child.after
    aos.wait_prompt()
    return seen + aos.child.before


def assert_framed(out: str, message: str, line: str) -> None:
    """An error shown as an ordinary one: its message, the user's line in a frame, the footer, no internals."""
    assert message in out
    assert f"> 1 | {line}" in out
    assert FOOTER in out
    assert '[string "' not in out and ".handlers" not in out and ".eval" not in out


def test_editor_print_keeps_editing_and_unknown_dot_commands(home):
    aos = Aos(home)
    try:
        aos.child.sendline(".editor")
        aos.child.expect("editor mode")
        aos.child.sendline("local n = 6")
        aos.child.sendline("local m = 7")
        aos.child.sendline(".print")
        aos.child.expect(r"local n = 6\r\nlocal m = 7\r\n")   # the buffer is printed ...
        aos.child.sendline("return n * m")
        aos.child.sendline(".print")
        aos.child.expect(r"local n = 6\r\nlocal m = 7\r\nreturn n \* m\r\n")
        out = aos.run(".done", value("42"))                # ... and editor mode went on: .done sends it
        assert "unexpected symbol" not in out

        out = aos.run(".foo", "unknown command")
        assert "ERROR: unknown command .foo" in out and ".help" in out and FOOTER not in out
        out = aos.run(".done", "editor mode only")         # an editor command outside the editor
        assert "ERROR: .done works in editor mode only" in out
        aos.run(".5 + 1", value("1.5"))                    # Lua that starts with a dot still goes to Lua
        # an empty table prints as aos 2.0.4 prints it (spec process-api §5.8: `{}` -> `{  }`)
        aos.run("return {}", r"\{  \}\r\n")
    finally:
        aos.close()


def test_scrollback_keeps_the_prompt_each_line_was_typed_at(home):
    aos = Aos(home)
    try:
        seen = raw_run(aos, "1 + 1", value("2"))
        # the echo is the process's own prompt (its colours as Lua wrote them), then the input in green
        assert re.search(r"default\x1b\[90m@\x1b\[34maos-2\.0\.4\x1b\[90m\[Inbox:\x1b\[31m1\x1b\[90m\]\x1b\[0m> "
                         r"\x1b\[32m1 \+ 1\x1b\[0m\r\n", seen), seen
        assert "\x1b[90m> \x1b[0m" not in seen              # not the bare `> ` of before
        aos.child.sendline("function twice(x)")
        aos.child.sendline("  return 2 * x")
        aos.child.sendline("end")
        aos.wait_prompt()
        raw_run(aos, "twice(21)", value("42"))
        aos.child.logfile_read.flush()
        log = ANSI.sub("", (home / "pty.log").read_text(encoding="utf-8"))
        assert re.search(r"\[Inbox:1\]> function twice\(x\)\n {24}\.\.\.   return 2 \* x\n {24}\.\.\. end\n", log)
        aos.run(".dryrun", "Dryrun Mode Engaged")
        seen = raw_run(aos, "return 5", value("5"))
        assert re.search(r"\x1b\[31m\*\x1b\[0m\x1b\[32mdefault.*> \x1b\[32mreturn 5", seen)  # dry-run `*` kept
        aos.run(".dryrun", "Dryrun Mode Disengaged")
    finally:
        aos.close()


def test_errors_read_like_ordinary_ones(home):
    aos = Aos(home)
    try:
        ordinary = aos.run("error('kaboom')", FOOTER)
        assert_framed(ordinary, "kaboom", "error('kaboom')")
        # an error value that is not a string fails the whole call in aos 2.0.4 (process-api §6.3)
        out = aos.run("error({code=1})", FOOTER)
        assert_framed(out, "attempt to concatenate a table value (local 'result')", "error({code=1})")
        assert "the error value was a table, not a string" in out
        out = aos.run('apm.install("@Sam/x")', FOOTER)
        assert_framed(out, "Invalid vendor name", 'apm.install("@Sam/x")')
        out = aos.run('return require("llama").load("/data/nope")', FOOTER)
        assert_framed(out, "cannot load /data/nope", 'return require("llama").load("/data/nope")')
        hog = 'local s = string.rep("x", 1 << 28); return #(s .. s .. s .. s .. s)'
        out = aos.run(hog, FOOTER)                          # over the process's memory limit
        assert_framed(out, "not enough memory", hog)
        aos.run("return 1 + 1", value("2"))                 # the process is still fine
    finally:
        aos.close()


def test_bytes_that_are_not_utf8(home):
    proj = home / "latin"
    proj.mkdir()
    (proj / "main.lua").write_bytes(b'local w = require("words")\n-- caf\xe9\nGreeting = "caf\xe9 " .. w.one\n'
                                    b'return Greeting\n')
    (proj / "words.lua").write_bytes(b'return { one = "na\xefve" }\n')
    (proj / "broken.lua").write_bytes(b'-- \xe9t\xe9\nlocal x = 1\nerror("mauvais \xe9tat")\n')
    aos = Aos(home, cwd=proj)
    try:
        out = aos.run(".load main.lua", r"caf\\xE9 na\\xEFve\r\n")   # Latin-1 files load, bytes kept
        assert "main.lua MAIN" in out and "words.lua" in out and "codec" not in out
        aos.run("return #Greeting", value("10"))            # 10 bytes: é and ï are one byte each
        out = aos.run(".load broken.lua", FOOTER)
        assert r"mauvais \xE9tat" in out and "in broken.lua" in out and '> 3 | error("mauvais \\xE9tat")' in out
        out = aos.run('print("\\255\\254 bytes")', r"bytes\r\n")
        assert r"\xFF\xFE bytes" in out
    finally:
        aos.close()


def test_ctrl_c_clears_then_asks_then_exits(home):
    aos = Aos(home)
    try:
        out = aos.run(".help", "Docs:")
        assert "Ctrl-C" in out and "clear the line" in out and "twice on an empty line: leave" in out
        aos.child.send("abc")
        aos.child.send("\x03")                              # clears the line, does not exit
        aos.run("1 + 1", value("2"))                        # (not "abc1 + 1")
        aos.child.sendline(".editor")
        aos.child.expect("editor mode")
        aos.child.sendline("Cancelled = true")
        aos.child.send("\x03")                              # on an empty editor line: leave editor mode
        aos.child.expect("Editor cancelled; nothing sent.")
        aos.wait_prompt()
        aos.run("return Cancelled == nil", "true")
        aos.child.send("\x03")                              # on an empty line: say how to exit
        aos.child.expect(r"To exit, press Ctrl-C again or Ctrl-D, or type \.exit")
        aos.wait_prompt()
        aos.run("2 + 2", value("4"))                        # anything typed in between starts over
        aos.child.send("\x03")
        aos.child.expect("press Ctrl-C again")
        aos.wait_prompt()
        aos.child.send("\x03")                              # twice: exit
        aos.child.expect("Exiting...")
        aos.child.expect(pexpect.EOF)
        aos.child.close()
        assert aos.child.exitstatus == 0
    finally:
        aos.close()
    again = Aos(home)
    try:
        again.child.send("\x04")                            # Ctrl-D exits at once
        again.child.expect("Exiting...")
        again.child.expect(pexpect.EOF)
    finally:
        again.close()


def test_staking_and_voting_load_alone_and_fail_only_when_used(home):
    aos = Aos(home, "stakes")
    try:
        out = aos.run(".load-blueprint staking", "before staking")
        assert "Note: staking needs Balances" in out and FOOTER not in out
        out = aos.run(".load-blueprint voting", r"Loading\.\.\.  voting")
        aos.run("return type(Stakers) .. ' ' .. type(Votes)", "table table")
        out = aos.run("return Handlers.stake({From = 'x', Quantity = '1'})", FOOTER)
        assert "staking needs Balances: load the token blueprint" in out
    finally:
        aos.close()


def test_run_output_has_no_trailing_blank_line(home):
    res = script(home, "--run", "return 6 * 7")
    assert res.returncode == 0
    assert res.stdout.endswith("42\n") and not res.stdout.endswith("\n\n"), repr(res.stdout)


# ---- the pieces underneath, without a terminal (fast) --------------------------------------------------------

def test_error_without_position_in_longer_code_has_no_frame_but_the_footer():
    err = '\n\n\x1b[31merror:\n\x1b[0m[string ".handlers"]:723: [string ".ao"]:821: Processes should be a table'
    shown = render.strip_ansi(render.format_error(err, "local a = 1\nao.assign({Processes = 'p'})"))
    assert shown.splitlines() == ["Processes should be a table", FOOTER]
    shown = render.strip_ansi(render.format_error(err, "\n  ao.assign({Processes = 'p'})\n"))  # one line, padded
    assert "> 2 |   ao.assign({Processes = 'p'})" in shown


def test_show_bytes_and_echo():
    raw = b"\xff\xfe caf\xc3\xa9".decode("utf-8", "surrogateescape")
    assert render.show_bytes(raw) == "\\xFF\\xFE café"
    assert render.output_text({"Output": {"data": raw, "prompt": "p> "}}) == "\\xFF\\xFE café"
    echo = render.strip_ansi(render.echo_input("function f()\nend", "\x1b[32mname\x1b[0m> "))
    assert echo == "name> function f()\n  ... end"  # continuation as the prompt drew it


def test_latin1_bundle_gives_lua_the_exact_bytes(tmp_path):
    (tmp_path / "main.lua").write_bytes(b'local t = require("t")\nreturn t .. "|\xe9\\"\\n"\n')
    (tmp_path / "t.lua").write_bytes(b'return "\xef\\0\\\\"\n')
    code = build_bundle(tmp_path / "main.lua").code
    code.encode("utf-8")  # the bundle itself is valid text: it can be sent as a message
    harness = ProcessHarness(pid="BYTES-PROCESS", owner="BYTES-OWNER", name="bytes", module="MOD",
                             msg_id="M", block_height="100", boot_tags=False)
    rt = harness.booted()
    try:
        res = harness.eval(rt, code)
        assert "Error" not in res, res
        assert res["Output"]["data"].encode("utf-8", "surrogateescape") == b'\xef\x00\\|\xe9"\n'
    finally:
        rt.close()
