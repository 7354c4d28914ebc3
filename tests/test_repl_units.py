"""REPL building blocks that need no node: flags, continuation, errors, history, completion, live filtering."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest
from prompt_toolkit.document import Document

from aos_py.repl import render
from aos_py.repl.commands import (
    EDITOR_BANNER,
    EditorState,
    ExitShell,
    blueprint_names,
    copy_blueprints,
    dispatch,
    editor_line,
)
from aos_py.repl.complete import ProcessCompleter, keys_snippet, parse_keys, split_target
from aos_py.repl.history import MAX_ENTRIES, ProcessHistory
from aos_py.repl.main import UsageError, build_parser, main, spawn_options
from aos_py.repl.session import Session, live_text
from aos_py.repl.syntax import is_incomplete


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


# ---- flags --------------------------------------------------------------------------------------------------

def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--wallet", "--load", "--run", "--list", "--watch", "--cron", "--tag-name", "--tag-value", "--data",
                 "--module", "--version", "--data-dir", "--dry-run", "--get-blueprints", "--monitor", "model add"):
        assert flag in out, flag


def test_version(capsys):
    from aos_py import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"AOS Client Version: {__version__}"


@pytest.mark.parametrize("value", ["5-minutes", "1-Second", "10-blocks", "2-HOURS", "1-year"])
def test_cron_units_accepted(value):
    assert spawn_options(parse("--cron", value))["cron"] == value


@pytest.mark.parametrize("value", ["5-fortnights", "minutes", "5minutes", "-5-minutes"])
def test_cron_rejected(value):
    with pytest.raises(UsageError, match="Invalid cron flag!"):
        spawn_options(parse(f"--cron={value}"))


def test_tags_pair_by_position_and_must_match():
    opts = spawn_options(parse("--tag-name", "A", "--tag-value", "1", "--tag-name", "B", "--tag-value", "2"))
    assert opts["tags"] == [("A", "1"), ("B", "2")]
    with pytest.raises(UsageError, match="pairs"):
        spawn_options(parse("--tag-name", "A"))


def test_data_file_is_read_and_a_missing_one_is_an_error(tmp_path):
    f = tmp_path / "boot.lua"
    f.write_text("Booted = true")
    assert spawn_options(parse("--data", str(f)))["data"] == b"Booted = true"
    with pytest.raises(UsageError, match="--data file not found"):
        spawn_options(parse("--data", str(tmp_path / "nope.lua")))


def test_bad_cron_exits_1_before_creating_anything(tmp_path, capsys):
    home = tmp_path / "home"
    code = main(["--data-dir", str(home), "--wallet", str(tmp_path / "w.json"), "--cron", "3-weeks", "--run", "1"])
    assert code == 1
    assert "Invalid cron flag!" in capsys.readouterr().err
    assert not home.exists() and not (tmp_path / "w.json").exists()


def test_get_blueprints_copies_all(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--get-blueprints", "bp"]) == 0
    copied = sorted(p.stem for p in (tmp_path / "bp").glob("*.lua"))
    assert copied == blueprint_names()
    assert {"apm", "token", "chat", "chatroom", "voting", "staking", "arena"} <= set(copied)
    assert copy_blueprints(tmp_path / "again")


# ---- continuation -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["function f(x)", "function f(x)\n  return x", "t = {", "t = {1,\n2,",
                                  "s = [[long", "if x then", "print(\"a\"", "for i = 1, 3 do", "x = 1 +"])
def test_incomplete_chunks_continue(code):
    assert is_incomplete(code)


@pytest.mark.parametrize("code", ["1 + 1", "function f(x)\n  return x\nend", "t = {1, 2}", "s = 'abc",
                                  "end", "x = = 1", ".load x.lua", "", "return"])
def test_complete_or_hopeless_chunks_are_sent(code):
    assert not is_incomplete(code)


# ---- errors and printing ----------------------------------------------------------------------------------------

def test_error_format_strips_chunk_prefixes_and_shows_frame():
    err = '\n\n\x1b[31merror:\n\x1b[0m[string ".handlers"]:201: [string "aos"]:2: attempt to call a nil value'
    shown = render.strip_ansi(render.format_error(err, "local a = 1\nb()\nlocal c"))
    lines = shown.splitlines()
    assert lines[0] == "attempt to call a nil value"
    assert "> 2 | b()" in shown and "  1 | local a = 1" in shown
    assert lines[-1] == render.ERROR_FOOTER


def test_error_keeps_print_log_and_frames_a_one_line_submission_without_position():
    err = "printed first\n\n\x1b[31merror:\n\x1b[0mno line here"
    shown = render.strip_ansi(render.format_error(err, "x"))
    assert shown.splitlines() == ["printed first", "no line here", "> 1 | x", render.ERROR_FOOTER]


def test_output_text_shapes():
    assert render.output_text({"Output": {"data": "2", "prompt": "p> "}}) == "2"
    assert render.output_text({"Output": {"prompt": "p> "}}) == ""
    assert render.output_text({"Output": {"data": {"output": "old"}}}) == "old"
    assert render.output_text({"Output": "plain"}) == "plain"
    assert render.output_text({}) is None


def test_box_is_aligned():
    lines = render.box("Help", ["a", "\x1b[32mcoloured\x1b[0m"]).splitlines()
    widths = {len(render.strip_ansi(x)) for x in lines}
    assert len(widths) == 1 and lines[0].startswith("╭─ Help ")


# ---- sessions, editor mode, live feed ------------------------------------------------------------------------

class Recorder:
    """A stand-in client that records Evals and answers with a fixed result (no node involved)."""

    def __init__(self, result: dict) -> None:
        self.result = result
        self.sent: list[str] = []
        self.dry: list[str] = []

    def send(self, wallet, target, *, data="", tags=()):
        self.sent.append(data)
        return f"id-{len(self.sent)}"

    def wait_result(self, process, message_id, timeout=30.0):
        return self.result

    def dryrun(self, process, *, data="", tags=(), owner=None):
        self.dry.append(data)
        return self.result


class Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def make_session(tmp_path, result=None):
    client = Recorder(result or {"Output": {"data": "ok", "prompt": "P> "}})
    out = Out()
    s = Session(client, SimpleNamespace(address="ME"), "PID", tmp_path, out=out, spinner=False)
    return s, client, out


def test_editor_mode_collects_and_submits_once(tmp_path):
    s, client, out = make_session(tmp_path)
    ed = EditorState()
    assert dispatch(s, ".editor", ed) and ed.active
    assert EDITOR_BANNER in out.text
    for line in ("local a = 1", "oops", ".delete", "return a"):
        assert not editor_line(s, line, ed)
    assert editor_line(s, ".done", ed)
    assert client.sent == ["local a = 1\nreturn a"] and not ed.active


def test_editor_cancel_and_print_send_nothing(tmp_path):
    s, client, out = make_session(tmp_path)
    ed = EditorState()
    dispatch(s, ".editor", ed)
    editor_line(s, "x = 1", ed)
    editor_line(s, ".cancel", ed)
    dispatch(s, ".editor", ed)
    editor_line(s, "y = 2", ed)
    assert not editor_line(s, ".print", ed)  # .print shows the buffer and keeps editing
    assert client.sent == [] and "y = 2" in out.text and ed.active and ed.lines == ["y = 2"]


def test_dryrun_toggle_marks_prompt_and_uses_dryrun(tmp_path):
    s, client, out = make_session(tmp_path)
    ed = EditorState()
    dispatch(s, ".dryrun", ed)
    assert "Dryrun Mode Engaged" in out.text
    assert render.strip_ansi(s.prompt_text()).startswith("*")
    s.evaluate("x = 1")
    assert client.dry == ["x = 1"] and client.sent == []
    dispatch(s, ".dryrun", ed)
    assert "Dryrun Mode Disengaged" in out.text and not render.strip_ansi(s.prompt_text()).startswith("*")


def test_unknown_blueprint_and_bad_load(tmp_path):
    s, client, out = make_session(tmp_path)
    dispatch(s, ".load-blueprint nosuch", EditorState())
    dispatch(s, ".load notes.txt", EditorState())
    assert "ERROR: .load-blueprint function requires a valid blueprint" in out.text
    assert "ERROR: .load function requires a *.lua file" in out.text
    assert client.sent == []


def test_prompt_follows_results_and_unknown_error(tmp_path):
    s, _, out = make_session(tmp_path, {"Output": []})
    assert s.prompt == "aos> "
    s.evaluate("1")
    assert render.UNKNOWN_ERROR in out.text
    s.client.result = {"Output": {"data": "2", "prompt": "Me[Inbox:3]> "}}
    s.evaluate("1 + 1")
    assert s.prompt == "Me[Inbox:3]> "


def test_live_feed_skips_own_evals_and_holds_while_paused(tmp_path):
    s, _, out = make_session(tmp_path)
    printed = {"Output": {"data": "New Message From abc...xyz: Action = Ping", "print": True, "prompt": "P[Inbox:2]> "}}
    s.on_message({"process": "PID", "id": "m1", "from": "ME", "action": "Eval", "result": {"Output": {"data": "own"}}})
    assert "own" not in out.text
    s.pause()
    s.on_message({"process": "PID", "id": "m2", "from": "OTHER", "action": "Ping", "result": printed})
    assert "New Message" not in out.text and s.prompt == "P[Inbox:2]> "
    assert s.resume() and out.text.count("New Message From abc...xyz") == 1
    assert live_text({"Output": {"data": "quiet", "prompt": "x"}}) is None
    assert live_text({"Error": "Error handling message"}) == "Error handling message"


def test_a_message_the_eval_sends_to_itself_shows_after_the_result_and_sets_the_prompt(tmp_path):
    """The Eval's output first, then the live line, as aos shows them; the prompt ends on the newest Inbox count."""
    import time

    from aos_py.client import Client
    from aos_py.node.wallet import Wallet

    client = Client.open(tmp_path / "node")
    try:
        w = Wallet.generate("ed25519")
        pid = client.spawn(w, name="selfie")
        out = Out()
        s = Session(client, w, pid, tmp_path, out=out, spinner=False)
        s.start_live()
        assert s.evaluate("1")
        before = int(render.strip_ansi(s.prompt).split("[Inbox:")[1].split("]")[0])
        assert s.evaluate('Send({Target = ao.id, Action = "Hi"})')
        deadline = time.monotonic() + 5
        while "New Message From" not in out.text and time.monotonic() < deadline:
            time.sleep(0.02)
        text = render.strip_ansi(out.text)
        assert text.index("Message added to outbox") < text.index("New Message From")
        assert "Action = Hi" in text
        assert f"[Inbox:{before + 1}]" in render.strip_ansi(s.prompt)
        s.stop_live()
    finally:
        client.close()

# ---- history ----------------------------------------------------------------------------------------------------

def test_history_written_per_entry_and_capped(tmp_path):
    path = tmp_path / "h" / "PID.json"
    h = ProcessHistory(path)
    for i in range(MAX_ENTRIES + 20):
        h.store_string(f"x = {i}")
    h.store_string("   ")
    saved = json.loads(path.read_text())
    assert len(saved) == MAX_ENTRIES and saved[-1] == f"x = {MAX_ENTRIES + 19}"
    again = ProcessHistory(path)
    assert list(again.load_history_strings())[0] == f"x = {MAX_ENTRIES + 19}"


def test_corrupt_history_is_ignored(tmp_path):
    path = tmp_path / "PID.json"
    path.write_text("{not json")
    assert list(ProcessHistory(path).load_history_strings()) == []


# ---- completion ---------------------------------------------------------------------------------------------------

def test_split_target():
    assert split_target("x = Handlers.ad") == ("Handlers", "ad")
    assert split_target("Handlers.") == ("Handlers", "")
    assert split_target("pri") == ("", "pri")
    assert split_target("a.b.c:d") == ("a.b.c", "d")
    assert split_target("x = 1 + ") is None


def test_completer_uses_process_keys():
    asked = []

    def fetch(path):
        asked.append(path)
        return {"Handlers": ["add(", "append(", "list"], "": ["Handlers", "print("]}[path]

    comp = ProcessCompleter(fetch)
    got = [c.text for c in comp.get_completions(Document("Handlers.a"), None)]
    assert got == ["add(", "append("]
    got = [c.text for c in comp.get_completions(Document("Handlers.a"), None)]
    assert asked == ["Handlers", "Handlers"][:len(asked)] and len(asked) == 1  # cached
    assert "print(" in [c.text for c in comp.get_completions(Document("pr"), None)]


def test_keys_snippet_lists_table_fields_in_a_process():
    from aos_py.runtime import ProcessRuntime

    env = {"Process": {"Id": "P" * 43, "Owner": "O" * 43, "Tags": []}}
    base = {"Target": "P" * 43, "Owner": "O" * 43, "From": "O" * 43, "Module": "M", "Block-Height": "1"}
    rt = ProcessRuntime()
    try:
        rt.handle({**base, "Id": "P" * 43, "Timestamp": 1, "Tags": []}, env)
        res = rt.handle({**base, "Id": "m1", "Timestamp": 2, "Tags": [{"name": "Action", "value": "Eval"}],
                         "Data": keys_snippet("Handlers")}, env)
        keys = parse_keys(res["Output"]["data"])
        assert {"add(", "append(", "list"} <= set(keys)
    finally:
        rt.close()


def test_model_add_refuses_missing_and_broken_files_before_opening_the_node(tmp_path, capsys):
    home = tmp_path / "node"
    assert main(["model", "add", str(tmp_path / "none.gguf"), "--data-dir", str(home)]) == 1
    assert "model file not found" in capsys.readouterr().err
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model at all")
    assert main(["model", "--data-dir", str(home), "add", str(broken)]) == 1
    assert "GGUF" in capsys.readouterr().err
    assert not home.exists()


def test_pad_evaluates_only_changed_files(tmp_path, monkeypatch):
    s, client, out = make_session(tmp_path)
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'a').write('PadValue = 3\\n')\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    monkeypatch.delenv("VISUAL", raising=False)
    dispatch(s, ".pad", EditorState())
    assert len(client.sent) == 1 and client.sent[0].rstrip().endswith("PadValue = 3")
    monkeypatch.setenv("EDITOR", f"{sys.executable} -c pass")
    dispatch(s, ".pad", EditorState())
    assert len(client.sent) == 1 and "Pad unchanged" in out.text
    monkeypatch.setenv("EDITOR", f"{sys.executable} -c 'raise SystemExit(3)'")
    dispatch(s, ".pad", EditorState())
    assert len(client.sent) == 1 and "status 3" in out.text


def test_help_live_pause_exit_texts(tmp_path):
    s, client, out = make_session(tmp_path)
    ed = EditorState()
    dispatch(s, ".help", ed)
    for cmd in (".load", ".load-blueprint", ".editor", ".dryrun", ".monitor", ".unmonitor", ".live", ".pause",
                ".pad", ".update", ".exit"):
        assert cmd in out.text
    dispatch(s, ".pause", ed)
    dispatch(s, ".live", ed)
    assert "=== Pausing Live Feed ===" in out.text and "=== Starting Live Feed ===" in out.text
    with pytest.raises(ExitShell):
        dispatch(s, ".exit", ed)
    assert dispatch(s, ".nosuch", ed)  # an unknown dot-word is answered here, never sent
    assert "ERROR: unknown command .nosuch" in out.text and ".help" in out.text
    assert not dispatch(s, ".5 + 1", ed)  # Lua that starts with a dot (a number) goes to the process
    assert client.sent == []


def test_abandoned_eval_result_arrives_through_the_live_feed(tmp_path):
    s, client, out = make_session(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    client.wait_result = interrupted
    assert not s.evaluate("Slow()")
    assert "Stopped waiting" in out.text
    s.on_message({"process": "PID", "id": "id-1", "from": "ME", "action": "Eval",
                  "result": {"Output": {"data": "finally done", "prompt": "P> "}}})
    assert "finally done" in out.text


def test_dot_commands_and_blueprint_names_complete():
    comp = ProcessCompleter(lambda path: [], ["token", "chat", "chatroom"])
    assert [c.text for c in comp.get_completions(Document(".load"), None)] == [".load-blueprint"]
    assert [c.text for c in comp.get_completions(Document(".load-blueprint ch"), None)] == ["chat", "chatroom"]
    assert [c.text for c in comp.get_completions(Document(".ed"), None)] == [".editor"]


def test_catch_up_shows_missed_results_once(tmp_path):
    s, client, out = make_session(tmp_path)
    ping = {"Output": {"data": "New Message From x: Action = Ping", "print": True, "prompt": "P> "}}
    rows = [{"cursor": 7, "id": "m7", "result": ping}, {"cursor": 8, "id": "m8", "result": {"Output": {"data": "eval"}}}]
    client.results = lambda process, after=None, limit=25, sort="ASC": [r for r in rows if after is None or r["cursor"] > after]
    s.on_message({"process": "PID", "id": "m7", "from": "OTHER", "action": "Ping", "result": ping})  # seen live first
    s.catch_up()
    s.catch_up()
    assert out.text.count("Action = Ping") == 1 and "eval" not in out.text and s._cursor == 8


def test_process_ids_starting_with_a_dash_are_not_flags():
    """base64url ids may begin with '-': `aos <id>` and `--watch <id>` must still take them as ids."""
    from aos_py.repl.main import _protect_dash_ids, build_parser

    pid = "-" + "Ab3_" * 10 + "xy"
    assert len(pid) == 43
    args = build_parser().parse_args(_protect_dash_ids([pid, "--dry-run", "--run", "1"]))
    assert (args.name, args.dry_run, args.run) == (pid, True, "1")
    args = build_parser().parse_args(_protect_dash_ids(["--watch", pid]))
    assert (args.name, args.watch) == (None, pid)


def test_pad_in_latin1_reaches_lua_byte_for_byte(tmp_path, monkeypatch):
    from aos_py.runtime import ProcessRuntime

    s, client, out = make_session(tmp_path)
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'wb').write(b'Word = \"caf\\xe9\"\\nreturn #Word\\n')\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    monkeypatch.delenv("VISUAL", raising=False)
    dispatch(s, ".pad", EditorState())
    assert len(client.sent) == 1
    sent = client.sent[0]
    sent.encode("utf-8")                      # what goes out is text an Eval can carry
    rt = ProcessRuntime()
    chunk = rt.eval_lua("return function(src) local f = assert(load(src)) return f() end")
    assert chunk(sent.encode("utf-8")) == 4   # "caf" + the single byte 0xE9
    rt.close()
