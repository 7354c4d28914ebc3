"""End to end: how `aos` starts, scripts and reports, driven as the real program (in a pty or a pipe).

Global flags around subcommands, --data boot code, no replayed errors at start, --watch, piped input read as
typed lines, the Llama engine note, versions, and progress shown only on a terminal.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_repl_e2e import ANSI, PROMPT, Aos, aos_env, base_args, script, value

pexpect = pytest.importorskip("pexpect", reason="pexpect is needed to drive aos in a pseudo-terminal")

TIMEOUT = 60
PID_RE = re.compile(r"[A-Za-z0-9_-]{43}")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("aosstart")


def aos(home: Path, *args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`aos ARGS` exactly as given (no flags added), its output captured."""
    return subprocess.run([sys.executable, "-m", "aos_py", *args], input=stdin, text=True, capture_output=True,
                          env=env or aos_env(home), cwd=str(home), timeout=TIMEOUT)


def line(text: str) -> re.Pattern:
    """A whole output line `text` (piped output: no carriage returns)."""
    return re.compile(rf"(?m)^{re.escape(text)}$")


def pid_of(home: Path, name: str) -> str:
    done = script(home, name, "--run", "return ao.id")
    assert done.returncode == 0, done.stderr
    return PID_RE.search(ANSI.sub("", done.stdout)).group(0)


def owns_process_named(home: Path, name: str) -> bool:
    listed = script(home, "--list")
    assert listed.returncode == 0, listed.stderr
    return re.search(rf"(?<![\w-]){re.escape(name)}\s+[A-Za-z0-9_-]{{43}}", ANSI.sub("", listed.stdout)) is not None


# -- 1. global flags before or after every subcommand ---------------------------------------------------

@pytest.mark.parametrize("sub", ["model", "faucet", "herd", "apm"])
def test_global_flags_before_or_after_each_subcommand(home, sub):
    node, wallet = str(home / "node"), str(home / "wallet.json")
    if sub == "faucet":
        pid_of(home, "payee")
    words = {"model": ["list"], "faucet": ["1", "--process", "payee"], "herd": ["status"], "apm": ["list"]}[sub]
    before = aos(home, "--data-dir", node, "--wallet", wallet, sub, *words)
    after = aos(home, sub, *words, "--data-dir", node, "--wallet", wallet)
    assert before.returncode == 0, before.stderr
    assert after.returncode == 0, after.stderr
    if sub == "faucet":
        assert "1 wAR sent to" in before.stdout and "balance: 2 wAR" in after.stdout
    else:
        assert before.stdout == after.stdout and before.stdout.strip()
    # a shell flag after the subcommand is the subcommand's error, never a process named after the subcommand
    wrong = aos(home, "--data-dir", node, "--wallet", wallet, sub, "--run", "x")
    assert wrong.returncode == 2 and f"aos {sub}: error" in wrong.stderr
    assert not owns_process_named(home, sub)


# -- 3. --data runs at boot, and what the boot code prints is shown ----------------------------------

def test_data_file_runs_at_boot_and_its_prints_show(home):
    (home / "boot.lua").write_text('print("booting " .. Name)\nBootValue = 7\n')
    shell = Aos(home, "booted", "--data", "boot.lua")
    try:
        assert "booting booted" in ANSI.sub("", shell.child.before)   # under the banner, before the prompt
        shell.run("return BootValue", value("7"))
    finally:
        shell.close()
    # an explicit On-Boot tag: kept as given (not doubled), its prints shown too, also with --run
    ran = script(home, "booted-tag", "--data", "boot.lua", "--tag-name", "On-Boot", "--tag-value", "Data",
                 "--run", "local n = 0 for _, t in ipairs(ao.env.Process.TagArray) do "
                          "if t.name == 'On-Boot' then n = n + 1 end end return BootValue * 10 + n")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split("\n")[:2] == ["booting booted-tag", "71"]
    # the process exists now: --data is not run again, and the user is told
    again = script(home, "booted-tag", "--data", "boot.lua", "--run", "return BootValue")
    assert again.returncode == 0 and "booting" not in again.stdout
    assert "--data only apply when a process is spawned" in again.stderr
    (home / "badboot.lua").write_text('error("boot failed here")\n')
    bad = script(home, "bad-boot", "--data", "badboot.lua", "--run", "return 1")
    assert "boot failed here" in bad.stdout                         # a failed boot is shown, not hidden


# -- 5. earlier errors are not shown again at the next start -----------------------------------------

def test_errors_of_earlier_runs_are_not_shown_again(home):
    shell = Aos(home, "returner")
    pid = shell.pid
    shell.close()                                   # a clean exit: the cursor is saved
    failed = script(home, "returner", "--run", "error('boom from run')")
    assert failed.returncode == 1 and "boom from run" in failed.stdout
    sent = script(home, "returner-friend", "--run", f"Send({{Target = '{pid}', Action = 'WhileAway'}})")
    assert sent.returncode == 0, sent.stderr
    shell = Aos(home, "returner")
    seen = ANSI.sub("", shell.child.before)
    assert "WhileAway" in seen                      # messages from others are still caught up ...
    assert "boom from run" not in seen              # ... our own --run errors are not printed again
    shell.close()


def test_a_crashed_session_is_not_replayed_at_the_next_start(home):
    Aos(home, "crasher").close()                    # an earlier session left cleanly: the cursor is saved
    shell = Aos(home, "crasher")
    pid = shell.pid
    shell.run("error('boom before crash')", "This error occurred")
    sent = script(home, "returner-friend", "--run", f"Send({{Target = '{pid}', Action = 'BeforeCrash'}})")
    assert sent.returncode == 0, sent.stderr
    shell.child.expect("BeforeCrash")
    time.sleep(1.3)                                 # the live feed saves its cursor every second
    shell.child.kill(signal.SIGKILL)
    shell.child.close(force=True)
    shell.child.logfile_read.close()
    shell = Aos(home, "crasher")
    try:
        seen = ANSI.sub("", shell.child.before)
        assert "boom" not in seen and "BeforeCrash" not in seen
    finally:
        shell.close()


# -- 6. --watch shows Evals' prints; an unknown process is an error ---------------------------------

def test_watch_shows_eval_prints(home):
    pid = pid_of(home, "observed")
    watcher = pexpect.spawn(sys.executable, ["-m", "aos_py", *base_args(home), "--watch", pid], env=aos_env(home),
                            cwd=str(home), encoding="utf-8", timeout=TIMEOUT)
    try:
        watcher.expect(f"Watching: {pid}")
        done = script(home, "observed", "--run", "print('printed by an eval'); return 6 * 7")
        assert done.returncode == 0, done.stderr
        watcher.expect("printed by an eval")
        watcher.expect(value("42"))
        failed = script(home, "observed", "--run", "error('eval error seen by watcher')")
        assert failed.returncode == 1
        watcher.expect("eval error seen by watcher")
        watcher.sendintr()
        watcher.expect(pexpect.EOF)
    finally:
        watcher.close(force=True)


def test_watch_refuses_unknown_processes_and_takes_names(home):
    pid = pid_of(home, "observed")
    for target in ("A" * 43, "no-such-name"):
        missing = script(home, "--watch", target)
        assert missing.returncode == 1 and f"Process {target} does not exist" in missing.stderr
    by_name = pexpect.spawn(sys.executable, ["-m", "aos_py", *base_args(home), "--watch", "observed"],
                            env=aos_env(home), cwd=str(home), encoding="utf-8", timeout=TIMEOUT)
    try:
        by_name.expect(f"Watching: {pid}")       # a name is one of your processes
        by_name.sendintr()
        by_name.expect(pexpect.EOF)
    finally:
        by_name.close(force=True)


# -- 7. piped stdin is read as typed lines ----------------------------------------------------------

def test_piped_lines_run_like_typed_lines(home):
    (home / "piped.lua").write_text("FromFile = 'file loaded'\nreturn FromFile\n")
    lines = "\n".join([
        ".help",
        "Counter = 40",
        "function bump(n)",          # an unfinished chunk continues onto the next lines
        "  return Counter + n",
        "end",
        "return bump(2)",
        ".load piped.lua",
        ".load-blueprint chatroom",
        "return #Members",
        "local gone = 'a local lives in one chunk'",
        "return gone == nil",
        ".editor",
        "local a = 20",
        "return a + 3",
        ".done",
        "",
    ])
    done = script(home, "piper", stdin=lines)
    out = ANSI.sub("", done.stdout)
    assert done.returncode == 0, out + done.stderr
    assert ".load-blueprint" in out                                  # the help box
    assert line("42").search(out) and line("file loaded").search(out)
    assert "Loading...  chatroom" in out and line("0").search(out)
    assert line("true").search(out) and line("23").search(out)
    failing = script(home, "piper", stdin="return 'first'\nerror('middle one')\nreturn 'last'\n")
    out = ANSI.sub("", failing.stdout)
    assert failing.returncode == 1                                   # a chunk errored
    assert "first" in out and "middle one" in out and "last" in out  # ... and the rest still ran
    assert script(home, "piper", stdin=".load nothere.lua\nreturn 1\n").returncode == 1
    assert script(home, "piper", stdin="return 1\n.exit\nerror('after exit')\n").returncode == 0
    # --run stays one chunk: a local lives across its lines
    one = script(home, "piper", "--run", "local kept = 5\nreturn kept * 2")
    assert one.returncode == 0 and one.stdout.split() == ["10"]


# -- 9. the Llama engine setting of a joining aos ----------------------------------------------------

def test_engine_setting_ignored_by_a_joining_aos_is_explained(home):
    env = aos_env(home)
    env.pop("AOS_PY_LLAMA_ENGINE", None)
    host = pexpect.spawn(sys.executable, ["-m", "aos_py", *base_args(home), "engine-host"], env=env,
                         cwd=str(home), encoding="utf-8", timeout=TIMEOUT, dimensions=(50, 160))
    try:
        host.expect(PROMPT)
        base = ["--data-dir", str(home / "node"), "--wallet", str(home / "wallet.json")]
        joined = aos(home, *base, "engine-guest", "--run", "return 1", env={**env, "AOS_PY_LLAMA_ENGINE": "native"})
        assert joined.returncode == 0, joined.stderr
        note = " ".join(joined.stderr.split())
        assert "AOS_PY_LLAMA_ENGINE=native is not used" in note and "use the wasm engine" in note
        assert "another aos already hosts the node" in note
        same = aos(home, *base, "engine-guest", "--run", "return 1", env={**env, "AOS_PY_LLAMA_ENGINE": "wasm"})
        assert "AOS_PY_LLAMA_ENGINE" not in same.stderr
        herd = aos(home, "herd", *base, env={**env, "AOS_PY_LLAMA_ENGINE": "native"})
        assert herd.returncode == 0 and "is not used" in herd.stderr
        host.sendline(".exit")
        host.expect(pexpect.EOF)
    finally:
        host.close(force=True)


# -- 12. one client version everywhere, and the process library named --------------------------------

def test_versions_agree(home):
    from aos_py import __version__
    from aos_py.client import Client, load_wallet

    assert aos(home, "--version").stdout.strip() == f"AOS Client Version: {__version__}"
    shell = Aos(home, "versioned")
    try:
        banner = ANSI.sub("", shell.log.read_text(encoding="utf-8").rsplit("Welcome to AOS", 1)[-1])
        assert f"Client Version: {__version__} " in banner and not re.search(r"Version: \S+\. \d{4}", banner)
        assert "Process Library: aos-2.0.4" in banner
        out = shell.run("local t = ao.env.Process.Tags return t['SDK'] .. ' ' .. t['aos-Version']",
                        value(f"aos-py {__version__}"))
        assert f"aos-py {__version__}" in out
    finally:
        shell.close()
    client = Client.open(home / "node")        # a spawn through the client API carries the same tags
    try:
        client.spawn(load_wallet(home / "wallet.json"), name="api-spawned")
    finally:
        client.close()
    listed = ANSI.sub("", script(home, "--list").stdout)
    for name in ("versioned", "api-spawned"):
        assert re.search(rf"{name}\s+\S+\s+aos-{re.escape(__version__)}\s", listed), listed


# -- 16. progress on a terminal only ---------------------------------------------------------------

def test_model_add_shows_progress_on_a_terminal_only(home):
    from aos_py.inference.demo import demo_model_path

    model = str(demo_model_path())
    env = {**aos_env(home), "AOS_PY_SPINNER_DELAY": "0"}
    child = pexpect.spawn(sys.executable, ["-m", "aos_py", "model", "add", model, "--data-dir", str(home / "node")],
                          env=env, cwd=str(home), encoding="utf-8", timeout=TIMEOUT, dimensions=(50, 160))
    try:
        child.expect(r"Importing demo-model\.gguf")
        child.expect(PID_RE)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    piped = aos(home, "model", "add", model, "--data-dir", str(home / "node"), env=env)
    assert piped.returncode == 0 and PID_RE.fullmatch(piped.stdout.strip())
    assert "Importing" not in piped.stderr and "\r" not in piped.stderr


def test_model_import_progress_counts_bytes(tmp_path):
    from aos_py.repl.subcommands import import_progress

    model = tmp_path / "big.gguf"
    model.write_bytes(b"\0" * 4_000_000)
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    status = import_progress(model, blobs)
    assert status() == "[Importing big.gguf (4.0 MB) into the data store...]"
    (blobs / ".incoming-x").write_bytes(b"\0" * 1_000_000)
    assert status() == "[Importing big.gguf: 1.0 MB of 4.0 MB (25%)...]"


def test_llama_eval_spinner_says_what_takes_the_time(monkeypatch):
    from aos_py.repl import session as session_mod

    monkeypatch.setattr(session_mod, "HINT_AFTER", 0.0)
    monkeypatch.setattr(session_mod, "_wasm_engine_compiled", lambda: False)
    assert session_mod._LLAMA_RE.search('Llama = require("llama")\nLlama.load("/data/x")')
    assert not session_mod._LLAMA_RE.search("return 1 + 1")
    text = session_mod._llama_hint("MID", time.monotonic())()
    assert text.startswith("[Computing MID: compiling the wasm inference engine (first use only)")
    monkeypatch.setattr(session_mod, "_wasm_engine_compiled", lambda: True)
    assert "loading the model" in session_mod._llama_hint("MID", time.monotonic())()
    monkeypatch.setattr(session_mod, "HINT_AFTER", 60.0)
    assert session_mod._llama_hint("MID", time.monotonic())() is None   # quick loads keep the plain text


def test_spinner_progress_only_on_a_terminal():
    import io

    from aos_py.repl.spinner import Spinner

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    pipe = io.StringIO()
    with Spinner("[Working...]", stream=pipe):
        time.sleep(0.4)
    assert pipe.getvalue() == ""
    tty = Tty()
    with Spinner("[Working...]", stream=tty, status=lambda: "[Working: 50%]"):
        time.sleep(0.5)
    assert "[Working: 50%]" in tty.getvalue() and tty.getvalue().endswith("\r\x1b[K")
