"""End to end: the real `aos` program driven in a pseudo-terminal, on a fresh node data directory.

Each test types what a user types and waits for what a user would see. The embedded node runs inside the
first `aos` of a data directory; a second `aos` (for messages from another process) joins it over its socket.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive aos in a pseudo-terminal")

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = re.compile(r"@.*aos-[0-9.]+.*\[Inbox:.*\]")
TIMEOUT = 60


def value(text: str) -> str:
    """A pattern for a printed result line `text` (not part of a longer word or number)."""
    return r"(?<![\d.])" + re.escape(text) + r"\r\n"


def aos_env(home: Path) -> dict:
    env = dict(os.environ)
    env.update({"PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color", "HOME": str(home),
                "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")})
    env.pop("AOS_PY_HOME", None)
    env.pop("AOS_WALLET", None)
    return env


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A fresh HOME with a node data dir and wallet path inside; shared by this module's tests."""
    return tmp_path_factory.mktemp("aoshome")


def base_args(home: Path) -> list[str]:
    return ["--data-dir", str(home / "node"), "--wallet", str(home / "wallet.json")]


class Aos:
    """One interactive `aos` in a pty."""

    def __init__(self, home: Path, *args: str, cwd: Path | None = None) -> None:
        self.child = pexpect.spawn(sys.executable, ["-m", "aos_py", *base_args(home), *args], env=aos_env(home),
                                   cwd=str(cwd or home), encoding="utf-8", timeout=TIMEOUT, dimensions=(50, 160))
        self.log = home / "pty.log"
        self.child.logfile_read = open(self.log, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.child.expect(r"Your AOS Process: (?:\x1b\[[0-9;]*m)?([A-Za-z0-9_-]{43})")
        self.pid = self.child.match.group(1)
        self.wait_prompt()

    def wait_prompt(self) -> None:
        self.child.expect(PROMPT)

    def run(self, line: str, expect: str | re.Pattern) -> str:
        """Type a line, wait for `expect` then for the next prompt; returns the text seen before the prompt."""
        self.child.sendline(line)
        self.child.expect(expect)
        seen = self.child.before + self.child.after
        self.wait_prompt()
        return ANSI.sub("", seen + self.child.before)

    def close(self) -> None:
        if self.child.isalive():
            self.child.sendline(".exit")
            self.child.expect(pexpect.EOF)
        self.child.close()
        self.child.logfile_read.close()


def script(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aos_py", *base_args(home), *args], input=stdin, text=True,
                          capture_output=True, env=aos_env(home), cwd=str(home), timeout=TIMEOUT)


def test_eval_and_multiline_function(home):
    aos = Aos(home)
    try:
        assert "2" in aos.run("1 + 1", value("2")).split()
        aos.child.sendline("function triple(x)")
        aos.child.sendline("  return x * 3")
        aos.child.sendline("end")
        aos.wait_prompt()
        aos.run("triple(14)", value("42"))
        out = aos.run("error('kaboom')", "This error occurred")
        assert "kaboom" in out and "1 | error('kaboom')" in out
    finally:
        aos.close()


def test_load_project_with_nested_require_and_error_location(home):
    proj = home / "my project"
    (proj / "lib" / "deep").mkdir(parents=True)
    (proj / "main.lua").write_text('local greet = require("lib.greet")\nGreeting = greet.hello("ao")\nreturn Greeting\n')
    (proj / "lib" / "greet.lua").write_text('local fmt = require("deep.fmt")\nlocal M = {}\n'
                                            'function M.hello(who) return fmt.wrap("hello " .. who) end\n'
                                            'function M.fail() local t = nil; return t.x end\nreturn M\n')
    (proj / "lib" / "deep" / "fmt.lua").write_text('return { wrap = function(s) return "<" .. s .. ">" end }\n')
    (proj / "broken.lua").write_text('local bad = require("lib.bad")\nreturn bad.run()\n')
    (proj / "lib" / "bad.lua").write_text('local M = {}\nfunction M.run()\n  local cfg = nil\n'
                                          '  return cfg.value\nend\nreturn M\n')
    aos = Aos(home, cwd=proj)
    try:
        out = aos.run('.load "main.lua"', "<hello ao>")
        assert "The following files will be deployed:" in out
        assert "main.lua MAIN" in out and "lib/greet.lua" in out and "lib/deep/fmt.lua" in out
        aos.run("return Greeting", "<hello ao>")
        out = aos.run(".load broken.lua", "This error occurred")
        assert "attempt to index a nil value (local 'cfg')" in out
        assert re.search(r"in \S*lib/bad\.lua", out)
        assert "4 |   return cfg.value" in out
        out = aos.run('require("lib.greet").fail()', "This error occurred")  # later, from a plain line
        assert re.search(r"in \S*lib/greet\.lua", out) and "4 | function M.fail()" in out
    finally:
        aos.close()


def test_editor_and_dryrun(home):
    aos = Aos(home)
    try:
        aos.child.sendline(".editor")
        aos.child.expect("<editor mode> use '.done' to submit or '.cancel' to cancel")
        aos.child.sendline("local n = 6")
        aos.child.sendline("return n * 5")
        aos.child.send("\x7f")  # backspace on the empty line re-opens the previous one
        aos.child.send("\x7f7")  # ... and edits it: return n * 7
        aos.child.sendline("")
        aos.run(".done", value("42"))
        aos.child.sendline(".editor")
        aos.child.expect("editor mode")
        aos.child.sendline("Cancelled = true")
        aos.run(".cancel", "nothing sent")
        aos.run("return Cancelled == nil", "true")
        aos.run("Counter = 1", r"\r\n")
        aos.run(".dryrun", "Dryrun Mode Engaged")
        aos.run("Counter = Counter + 100; return Counter", value("101"))
        aos.run(".dryrun", "Dryrun Mode Disengaged")
        aos.run("return Counter", value("1"))
    finally:
        aos.close()


def test_live_message_keeps_half_typed_line(home):
    aos = Aos(home, "receiver")
    try:
        aos.child.send("local half = 'typed'")
        sender = script(home, "sender", "--run", f"Send({{Target = '{aos.pid}', Action = 'Ping', Data = 'hi'}})")
        assert sender.returncode == 0, sender.stderr
        aos.child.expect(r"New Message From .*Action = .*Ping")
        aos.child.expect(re.escape("Inbox:") + r"\S*2")  # the prompt was refreshed
        # finishing the line evaluates what was typed before the message arrived: it survived the redraw
        aos.child.sendline(" return half")
        aos.child.expect(value("typed"))
        aos.wait_prompt()
    finally:
        aos.close()


def test_history_survives_exit_and_restart(home):
    aos = Aos(home, "historian")
    try:
        aos.run("Remember = 'me'", r"\r\n")
    finally:
        aos.close()
    aos = Aos(home, "historian")
    try:
        aos.run("Remember = 'again'", r"\r\n")
        aos.child.send("\x1b[A\x1b[A")  # up arrow twice: the line from the previous session
        aos.child.sendline("")
        aos.child.expect(re.escape("]\x1b[0m> \x1b[32mRemember = 'me'"))  # echoed after its prompt
        aos.wait_prompt()
        aos.child.send("garbage(((")
        aos.child.send("\x03")  # Ctrl-C clears the line
        aos.run("return Remember", value("me"))
        aos.child.send("\x04")  # Ctrl-D on an empty line exits
        aos.child.expect("Exiting")
        aos.child.expect(pexpect.EOF)
    finally:
        aos.close()


def test_tab_completes_handlers_fields(home):
    aos = Aos(home)
    try:
        aos.child.send("Handlers.\t")  # a menu of the live process's Handlers fields
        aos.child.expect(re.escape("add("))
        aos.child.expect(re.escape("before("))
        aos.child.send("\x03")
        aos.child.send("Handlers.appe\t")  # a single candidate is inserted
        aos.child.expect("append")
        aos.child.send("\x03")
        aos.run("return 'still here'", "still here")
    finally:
        aos.close()


def test_run_and_stdin_exit_codes(home):
    ok = script(home, "scripted", "--run", "return 20 + 22")
    assert ok.returncode == 0, ok.stderr
    assert "42" in ok.stdout.split() and "Welcome" not in ok.stdout
    bad = script(home, "scripted", "--run", "error('nope')")
    assert bad.returncode == 1 and "nope" in bad.stdout
    assert "\x1b[" not in bad.stdout + ok.stdout, "no colour escapes into a pipe"
    piped = script(home, "scripted", stdin="Piped = 5\nreturn Piped * 2\n")
    assert piped.returncode == 0 and "10" in piped.stdout.split()
    piped_bad = script(home, "scripted", stdin="return nil + 1\n")
    assert piped_bad.returncode == 1
    dry = script(home, "scripted", "--run", "Piped = 99; return Piped", "--dry-run")
    assert dry.returncode == 0 and "99" in dry.stdout.split()
    again = script(home, "scripted", "--run", "return Piped")
    assert "5" in again.stdout.split()
    listed = script(home, "--list")
    assert listed.returncode == 0 and "scripted" in listed.stdout
    from aos_py import __version__
    assert f"aos-{__version__}" in ANSI.sub("", listed.stdout)    # the aos-Version tag written at spawn
    (home / "startup").mkdir(exist_ok=True)
    (home / "startup" / "ok.lua").write_text("Loaded = 'yes'\nreturn 'ok file'\n")
    (home / "startup" / "bad.lua").write_text("local x = nil\nreturn x.field\n")
    loaded = script(home, "scripted", "--load", "startup/ok.lua", "--load", "startup/bad.lua", "--run", "return Loaded")
    assert loaded.returncode == 1  # a --load error is reported, not swallowed
    text = ANSI.sub("", loaded.stdout)
    assert "ok file" in text and "attempt to index a nil value (local 'x')" in text and "bad.lua" in text
    assert "2 | return x.field" in text and "yes" in text.split()
    missing = script(home, "scripted", "--load", "startup/none.lua", "--run", "return 1")
    assert missing.returncode == 1 and "--load file not found: startup/none.lua" in missing.stderr
    pid = re.search(r"scripted\S*\s+([A-Za-z0-9_-]{43})", ANSI.sub("", listed.stdout)).group(1)
    tagged = script(home, "tagged", "--tag-name", "Zeta", "--tag-value", "1", "--tag-name", "Alpha", "--tag-value", "2",
                    "--run", "local t = {} for _, x in ipairs(Inbox[1].TagArray) do t[#t + 1] = x.name .. '=' .. x.value end "
                             "return table.concat(t, ',')")
    assert tagged.returncode == 0, tagged.stderr
    assert tagged.stdout.split(",")[:4] == ["App-Name=aos", "Name=tagged", "Zeta=1", "Alpha=2"]
    by_id = script(home, pid, "--run", "return Name .. ' ' .. Piped")
    assert by_id.returncode == 0 and "scripted 5" in by_id.stdout


def test_blueprint_loads_in_the_shell(home):
    aos = Aos(home, "room")
    try:
        out = aos.run(".load-blueprint chatroom", "Loading...  chatroom")
        assert "Loading...  chatroom" in out
        aos.run("return #Members", value("0"))
        aos.run(".load-blueprint token", "Loading...  token")
        aos.run("return Balances[ao.id]", value("10000" + "0" * 12))
        out = aos.run(".load-blueprint nosuch", "valid blueprint")
        assert "ERROR: .load-blueprint function requires a valid blueprint" in out
    finally:
        aos.close()


def test_cron_ticks_show_live_after_monitor(home):
    aos = Aos(home, "ticker", "--cron", "1-second")
    try:
        aos.run(".monitor", "Monitoring")
        aos.child.expect(r"New Message From .*Action = .*Cron", timeout=20)
        aos.run(".unmonitor", "Monitoring stopped")
        aos.run(".pause", "Pausing Live Feed")
        aos.run(".live", "Starting Live Feed")
    finally:
        aos.close()


def test_watch_prints_another_process_output(home):
    target = script(home, "watched", "--run", "return ao.id")
    assert target.returncode == 0, target.stderr
    pid = re.search(r"[A-Za-z0-9_-]{43}", ANSI.sub("", target.stdout)).group(0)
    watcher = pexpect.spawn(sys.executable, ["-m", "aos_py", *base_args(home), "--watch", pid], env=aos_env(home),
                            cwd=str(home), encoding="utf-8", timeout=TIMEOUT)
    try:
        watcher.expect(f"Watching: {pid}")
        sent = script(home, "watcher-friend", "--run", f"Send({{Target = '{pid}', Action = 'Hello'}})")
        assert sent.returncode == 0, sent.stderr
        watcher.expect(r"New Message From .*Action = .*Hello")
        watcher.sendintr()
        watcher.expect(pexpect.EOF)
    finally:
        watcher.close(force=True)


def test_picker_when_several_processes_share_a_name(home):
    first = script(home, "twin", "--run", "return ao.id")
    assert first.returncode == 0, first.stderr
    from aos_py.client import Client, load_wallet

    client = Client.open(home / "node")
    try:
        second = client.spawn(load_wallet(home / "wallet.json"), name="twin")
        rows = client.find_processes(load_wallet(home / "wallet.json").address, "twin")
    finally:
        client.close()
    assert len(rows) == 2 and rows[0]["id"] == second
    child = pexpect.spawn(sys.executable, ["-m", "aos_py", *base_args(home), "twin"], env=aos_env(home),
                          cwd=str(home), encoding="utf-8", timeout=TIMEOUT, dimensions=(50, 160))
    try:
        child.expect("Select A Process")
        child.expect(r"number \[1-2")
        child.sendline("2")
        child.expect(r"Your AOS Process: (?:\x1b\[[0-9;]*m)?([A-Za-z0-9_-]{43})")
        assert child.match.group(1) == rows[1]["id"]
        child.expect(PROMPT)
        child.sendline(".exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)


def test_live_feed_survives_the_hosting_terminal_leaving(home):
    host = Aos(home, "first-terminal")
    other = Aos(home, "second-terminal")
    try:
        host.close()  # the node moves out of the terminal that hosted it
        sent = script(home, "pinger", "--run", f"Send({{Target = '{other.pid}', Action = 'StillThere'}})")
        assert sent.returncode == 0, sent.stderr
        other.child.expect(r"New Message From .*Action = .*StillThere")
        other.run("return 'ok'", value("ok"))
    finally:
        other.close()


def test_messages_received_while_away_are_shown_on_return(home):
    aos = Aos(home, "traveller")
    pid = aos.pid
    aos.close()
    sent = script(home, "postman", "--run", f"Send({{Target = '{pid}', Action = 'Postcard'}})")
    assert sent.returncode == 0, sent.stderr
    aos = Aos(home, "traveller")
    try:
        # printed before the first prompt is drawn
        assert re.search(r"New Message From .*Action = .*Postcard", ANSI.sub("", aos.child.before))
    finally:
        aos.close()


def test_model_add_and_list(home):
    from aos_py.inference.demo import demo_model_path

    def model(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "aos_py", "model", *args, "--data-dir", str(home / "node")],
                              text=True, capture_output=True, env=aos_env(home), cwd=str(home), timeout=TIMEOUT)

    added = model("add", str(demo_model_path()))
    assert added.returncode == 0, added.stderr
    model_id = added.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", model_id)
    listed = model("list")
    assert listed.returncode == 0 and model_id in listed.stdout
    readable = script(home, "reader", "--run", f"local f = io.open('/data/{model_id}', 'rb') "
                                               "local magic = f:read(4) f:close() return magic")
    assert readable.returncode == 0 and "GGUF" in readable.stdout.split()
