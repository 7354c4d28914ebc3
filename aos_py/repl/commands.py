"""The REPL's dot-commands (.help, .load, .load-blueprint, .dryrun, .monitor, .live, .pad, .update, ...).

Each command gets the Session and the rest of the line and returns whether the shell should keep running.
Editor mode (.editor/.done/.cancel/.delete/.print) keeps its buffer in EditorState, driven by the prompt loop.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from aos_py.repl import render
from aos_py.repl.bundle import eval_source
from aos_py.repl.session import Session, load_file
from aos_py.resources import lua_dir

EDITOR_BANNER = "<editor mode> use '.done' to submit or '.cancel' to cancel"
BLUEPRINT_ERROR = "ERROR: .load-blueprint function requires a valid blueprint"
EDITOR_COMMANDS = (".done", ".cancel", ".delete", ".print")
# A dot-command word: `.` then a letter. Lua code never starts like that (`.5 + 1` is a number and goes to Lua).
_DOT_WORD = re.compile(r"^\.[A-Za-z][\w-]*$")


class ExitShell(Exception):
    """Raised by .exit: leave the REPL with status 0."""


@dataclass
class EditorState:
    """Lines collected in .editor mode; None when not in editor mode."""

    lines: list[str] | None = None
    erase: list[int] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.lines is not None


def blueprints_dir() -> Path:
    return lua_dir() / "blueprints"


def blueprint_names() -> list[str]:
    folder = blueprints_dir()
    return sorted(p.stem for p in folder.glob("*.lua")) if folder.is_dir() else []


def blueprint_source(name: str) -> str | None:
    """The Lua text of a shipped blueprint, or None for an unknown name (no path tricks: names only)."""
    name = name.strip()
    if name not in blueprint_names():
        return None
    return (blueprints_dir() / f"{name}.lua").read_text(encoding="utf-8")


def copy_blueprints(dest: Path) -> list[Path]:
    """--get-blueprints: copy every blueprint into `dest` (created if needed); returns the files written."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in blueprint_names():
        target = dest / f"{name}.lua"
        shutil.copyfile(blueprints_dir() / f"{name}.lua", target)
        written.append(target)
    return written


def library_version() -> str | None:
    """The aos process library version this installation computes processes with (from lua/process.lua)."""
    try:
        text = (lua_dir() / "process.lua").read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(r"_version\s*=\s*[\"']([^\"']+)[\"']", text)
    return m.group(1) if m else None


def pad_path(session: Session) -> Path:
    return session.data_dir / "pads" / f"{session.process_id}.lua"


def run_pad(session: Session) -> None:
    """`.pad`: edit a per-process Lua file in $EDITOR; evaluate it when the editor exits 0 and the file changed."""
    path = pad_path(session)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("-- aos pad: write Lua here; it is evaluated when you save and quit\n", encoding="utf-8")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        code = subprocess.call([*shlex.split(editor), str(path)])
    except OSError as exc:
        session.write(render.colour(f"ERROR: cannot start editor '{editor}': {exc}", render.RED))
        return
    if code != 0:
        session.write(render.colour(f"Editor exited with status {code}; nothing evaluated.", render.GRAY))
        return
    text = path.read_bytes().decode("utf-8", "surrogateescape")    # Lua source is bytes: Latin-1 is fine
    if hashlib.sha256(path.read_bytes()).hexdigest() == before:
        session.write(render.colour("Pad unchanged; nothing evaluated.", render.GRAY))
        return
    session.evaluate(eval_source(text, "@" + path.name), echo=False)


def faucet(session: Session, amount: str) -> None:
    """`.faucet [amount]`: the local wAR token credits this process; its Credit-Notice follows as a live message."""
    from aos_py.node.services import war_units

    try:
        war_units(amount)
    except ValueError as exc:
        session.write(render.colour(f"Faucet failed: {exc}", render.RED))
        return
    # said first: the token's Credit-Notice arrives (as a live message) while the Mint is still answering
    session.write(render.colour(f"💧 {amount} wAR sent to {session.process_id}", render.GREEN))
    try:
        session.client.faucet(session.process_id, amount)
    except Exception as exc:
        session.write(render.colour(f"Faucet failed: {exc} (nothing was sent)", render.RED))


def unknown_command(session: Session, word: str) -> None:
    """An unknown `.word`: say so (aos would send it to Lua and show a syntax error) and point to .help."""
    if word in EDITOR_COMMANDS:
        session.write(render.colour(f"ERROR: {word} works in editor mode only (start it with .editor)", render.RED))
    else:
        session.write(render.colour(f"ERROR: unknown command {word} (type .help for the list of commands)",
                                    render.RED))


def dispatch(session: Session, line: str, editor: EditorState) -> bool:
    """Run a dot-command line. Returns False when `line` is not a dot-command at all (it then goes to Lua);
    an unknown `.word` is answered here and never sent."""
    word, _, rest = line.strip().partition(" ")
    if word == ".help":
        session.write(render.help_box())
    elif word == ".exit":
        raise ExitShell()
    elif word == ".load":
        load_file(session, rest)
    elif word == ".load-blueprint":
        source = blueprint_source(rest)
        if source is None:
            session.write(render.colour(BLUEPRINT_ERROR, render.RED))
            names = ", ".join(blueprint_names())
            session.write(render.colour(f"available: {names}", render.GRAY))
        else:
            session.write(render.colour(f"Loading...  {rest.strip()}", render.GREEN))
            session.evaluate(source)
    elif word == ".editor":
        editor.lines = []
        session.write(EDITOR_BANNER)
    elif word == ".dryrun":
        session.dryrun = not session.dryrun
        session.write("Dryrun Mode Engaged" if session.dryrun else "Dryrun Mode Disengaged")
    elif word == ".monitor":
        try:
            session.client.monitor(session.process_id)
            session.write(render.colour("Monitoring: cron ticks for this process are on.", render.GREEN))
        except Exception as exc:
            session.write(render.colour(f"Could not start monitoring: {exc}", render.RED))
    elif word == ".unmonitor":
        try:
            session.client.unmonitor(session.process_id)
            session.write(render.colour("Monitoring stopped: no more cron ticks.", render.GREEN))
        except Exception as exc:
            session.write(render.colour(f"Could not stop monitoring: {exc}", render.RED))
    elif word == ".live":
        session.write("=== Starting Live Feed ===")
        session.resume()
    elif word == ".pause":
        session.write("=== Pausing Live Feed ===")
        session.pause()
    elif word == ".pad":
        run_pad(session)
    elif word == ".faucet":
        faucet(session, rest.strip() or "1")
    elif word == ".update":
        version = library_version() or "unknown"
        session.write(f"This node computes every process with the installed aos library (aos-{version}); "
                      "your process is up to date.")
    elif _DOT_WORD.match(word):
        unknown_command(session, word)
    else:
        return False
    return True


def editor_line(session: Session, line: str, editor: EditorState) -> bool:
    """Handle one line typed in editor mode; returns True when editor mode ended."""
    assert editor.lines is not None
    cmd = line.strip()
    if cmd == ".done":
        code = "\n".join(editor.lines)
        editor.lines = None
        if code.strip():
            session.evaluate(code)
        return True
    if cmd == ".cancel":
        editor.lines = None
        session.write(render.colour("Editor cancelled; nothing sent.", render.GRAY))
        return True
    if cmd == ".print":  # show the buffer and keep editing
        if editor.lines:
            session.write("\n".join(editor.lines))
        else:
            session.write(render.colour("(the editor buffer is empty)", render.GRAY))
        return False
    if cmd == ".delete":
        if editor.lines:
            removed = editor.lines.pop()
            session.write(render.colour(f"(removed: {removed})", render.GRAY))
        return False
    editor.lines.append(line)
    return False
