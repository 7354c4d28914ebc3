"""`aos` command line: flags, start-up (wallet, find or spawn the process, splash), scripting modes, models.

Imports stay lazy: --help/--version never load the node, and nothing on the REPL path imports the
inference engines, so a returning user gets a prompt quickly.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from aos_py import AOS_PROCESS_VERSION, __version__
from aos_py.repl import render

PROCESS_ID_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
CRON_RE = re.compile(r"^(\d+)-(second|seconds|minute|minutes|hour|hours|day|days|month|months|year|years|block|blocks)$",
                     re.IGNORECASE)


class UsageError(Exception):
    """Bad command-line input: printed in red, exit status 1, nothing changed."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aos",
        description="aos: a Lua shell inside an AO process, on a local AO node.",
        epilog="Also: `aos model add FILE.gguf | list` (models in the data store), `aos faucet [AMOUNT]` (wAR for "
               "your process), `aos herd status | use MODEL-ID | --workers N` (the Llama Herder), "
               "`aos apm publish DIR | list` (the local package registry), `aos serve` (the node over the AO "
               "HTTP protocols: MU, CU, SU, gateway), `aos test [PATHS]` (run Lua spec files). With MU_URL and "
               "CU_URL set, aos drives that remote node instead of the embedded one.",
    )
    p.add_argument("name", nargs="?", default=None, help="process name (default: default) or a 43-char process id")
    p.add_argument("--wallet", metavar="FILE", help="JWK wallet file (default: $AOS_WALLET or ~/.aos.json; made if missing)")
    p.add_argument("--data-dir", metavar="DIR", help="node data directory (default: $AOS_PY_HOME or ~/.aos-py)")
    p.add_argument("--load", metavar="FILE", action="append", default=[],
                   help="load a Lua file (with its requires) after connecting; repeatable; output and errors are shown")
    p.add_argument("--run", metavar="LUA", help="evaluate one Lua chunk, print the result and exit (0 ok, 1 error)")
    p.add_argument("--dry-run", "--dryrun", dest="dry_run", action="store_true",
                   help="with --run or piped Lua: evaluate without saving the process state; "
                        "alone: start the shell in dry-run mode (.dryrun toggles it)")
    p.add_argument("--list", action="store_true", help="list the processes your wallet owns and exit")
    p.add_argument("--watch", metavar="PID", help="print everything a process prints, its Evals' output included "
                                                  "(no REPL); Ctrl-C stops")
    p.add_argument("--cron", metavar="N-UNIT", help="spawn only: cron interval, e.g. 5-minutes (units second..year, block)")
    p.add_argument("--monitor", action="store_true", help="turn cron ticks on for the process right after connecting")
    p.add_argument("--tag-name", action="append", default=[], metavar="NAME", help="spawn only: extra tag name (repeatable)")
    p.add_argument("--tag-value", action="append", default=[], metavar="VALUE",
                   help="spawn only: value for the --tag-name in the same position")
    p.add_argument("--data", metavar="FILE",
                   help="spawn only: Lua the new process runs when it boots (the spawn data, with the tag "
                        "On-Boot=Data unless you give an On-Boot tag); what it prints is shown at start")
    p.add_argument("--module", metavar="ID", help="spawn only: process module id (default: the aos-py module)")
    p.add_argument("--get-blueprints", nargs="?", const=".", metavar="DIR",
                   help="copy the shipped blueprints into DIR (default: the current folder) and exit")
    p.add_argument("--version", action="store_true", help="print the client version and exit")
    return p


def data_dir_of(arg: str | None) -> Path:
    return Path(arg or os.environ.get("AOS_PY_HOME") or Path.home() / ".aos-py").expanduser()


def spawn_options(args: argparse.Namespace) -> dict:
    """Validate and collect the spawn-only flags (checked before anything is created)."""
    opts: dict = {"tags": [], "data": "", "cron": None, "module": args.module}
    if args.cron is not None:
        if not CRON_RE.match(args.cron):
            raise UsageError("Invalid cron flag! Use <number>-<unit>, unit one of second(s), minute(s), hour(s), "
                             "day(s), month(s), year(s), block(s)")
        opts["cron"] = args.cron
    if len(args.tag_name) != len(args.tag_value):
        raise UsageError(f"--tag-name and --tag-value must come in pairs (got {len(args.tag_name)} names "
                         f"and {len(args.tag_value)} values)")
    opts["tags"] = list(zip(args.tag_name, args.tag_value, strict=True))
    if args.data:
        path = Path(args.data).expanduser()
        if not path.is_file():
            raise UsageError(f"--data file not found: {path}")
        opts["data"] = path.read_bytes()
        if not any(name.lower() == "on-boot" for name, _ in opts["tags"]):
            opts["tags"].append(("On-Boot", "Data"))   # the process evaluates its spawn data when it boots
    return opts


def process_library() -> str:
    """The aos process library version every process of this node runs (lua/process.lua)."""
    from aos_py.repl.commands import library_version

    return library_version() or AOS_PROCESS_VERSION


def splash(address: str, data_dir: str, remote: bool = False) -> str:
    """The start-up box: welcome line, client and process library versions, wallet, the node and its data."""
    if remote:
        network = [f"Network: Remote (MU {os.environ.get('MU_URL', '?')}, CU {os.environ.get('CU_URL', '?')})"]
    else:
        network = ["Network: Local (embedded aos-py node)", f"Data: {data_dir}"]
    return render.box("AOS", [
        "Welcome to AOS: Your operating system for AO, the decentralized open access supercomputer.",
        f"Client Version: {__version__}",
        f"Process Library: aos-{process_library()} (what every process on this node runs)",
        f"Wallet Address: {address}",
        "─" * 20,
        *network,
        "Type .help for commands; Ctrl-D, Ctrl-C twice or .exit to leave.",
    ])


def engine_note(client) -> str | None:
    """A note when $AOS_PY_LLAMA_ENGINE asks for an engine the node does not use: the node belongs to the
    aos (or program) that opened the data directory first, and runs with that one's setting."""
    wanted = os.environ.get("AOS_PY_LLAMA_ENGINE", "").strip()
    if not wanted or getattr(client, "hosting", True):
        return None
    try:
        engine = str(client.llama_engine())
    except Exception:  # an older host without the call: nothing to compare
        return None
    if engine.lower() == wanted.lower():
        return None
    return (f"Note: AOS_PY_LLAMA_ENGINE={wanted} is not used: another aos already hosts the node of "
            f"{client.data_dir}, and its processes use the {engine} engine (the setting of the aos that "
            f"opened the node first). To use {wanted}, leave the other aos sessions of this data directory "
            "and start again with the setting.")


def show_engine_note(client) -> None:
    note = engine_note(client)
    if note:
        print(render.colour(note, render.YELLOW), file=sys.stderr)


def pick_process(rows: list[dict], name: str) -> dict:
    """Several processes share the name: ask which one (newest first); without a terminal take the newest."""
    if not sys.stdin.isatty():
        return rows[0]
    print(f"Select A Process ({len(rows)} named '{name}'):")
    for i, row in enumerate(rows, 1):
        print(f"  {i} - {row['id']} - {row.get('created', '')}")
    while True:
        answer = input(f"number [1-{len(rows)}, Enter = 1]: ").strip() or "1"
        if answer.isdigit() and 1 <= int(answer) <= len(rows):
            return rows[int(answer) - 1]
        print(render.colour(f"Please type a number from 1 to {len(rows)}.", render.RED))


SPAWN_ONLY = (("data", "--data"), ("cron", "--cron"), ("tag_name", "--tag-name"), ("module", "--module"))


def find_or_spawn(client, wallet, target: str, opts: dict) -> tuple[str, bool]:
    """The process id for a name or id, and whether it was spawned now: an id is used as is; a name is
    looked up, or spawned when missing."""
    from aos_py.repl.spinner import Spinner

    if PROCESS_ID_RE.match(target):
        return target, False
    with Spinner("[Starting AOS...]"):
        rows = client.find_processes(wallet.address, target)
    if rows:
        return (rows[0]["id"] if len(rows) == 1 else pick_process(rows, target)["id"]), False
    with Spinner("[Spawning New Process...]"):
        # the client writes App-Name=aos and Name=<name> first, then these tags in order, then the
        # client version (aos-Version) as aos does
        return client.spawn(wallet, name=target, module=opts["module"], tags=opts["tags"], data=opts["data"],
                            cron=opts["cron"]), True


def read_piped_stdin() -> Iterable[str] | None:
    """Piped input's lines, read as they come (so `tail -f log | aos` works); None on a terminal."""
    if sys.stdin is None or sys.stdin.isatty():
        return None
    return sys.stdin


_ID_RE = re.compile(r"^-[A-Za-z0-9_-]{42}$")


def _protect_dash_ids(argv: list[str]) -> list[str]:
    """Keep process ids that start with '-' (base64url allows it) from being read as flags.

    An id given as an option's value becomes `--opt=ID`; a positional id goes after `--`.
    """
    valued = {
        opt for action in build_parser()._actions if action.nargs != 0 for opt in action.option_strings
    }
    out: list[str] = []
    tail: list[str] = []
    for arg in argv:
        if _ID_RE.match(arg):
            if out and out[-1] in valued:
                out[-1] = f"{out[-1]}={arg}"
            else:
                tail.append(arg)
        else:
            out.append(arg)
    return out + (["--", *tail] if tail else [])


def main(argv: list[str] | None = None) -> int:
    if argv is None:    # run as the `aos` program: no colour escapes into files, pipes and CI logs
        render.plain_streams_unless_terminal()
    argv = sys.argv[1:] if argv is None else argv
    from aos_py.repl.subcommands import find_subcommand, run_subcommand

    sub, rest = find_subcommand(argv)
    if sub is not None:
        return run_subcommand(sub, rest)
    args = build_parser().parse_args(_protect_dash_ids(argv))
    if args.version:
        print(f"AOS Client Version: {__version__}")
        return 0
    if args.get_blueprints is not None:
        from aos_py.repl.commands import copy_blueprints

        for path in copy_blueprints(Path.cwd() / args.get_blueprints):
            print(f"Copied {path.name} -> {path}")
        return 0
    try:
        return run(args)
    except UsageError as exc:
        print(render.colour(str(exc), render.RED), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _prewarm_prompt() -> None:
    """Import prompt-toolkit on a side thread while the node opens (I/O-bound), to reach the prompt sooner."""
    import importlib
    import threading

    def load() -> None:
        try:
            importlib.import_module("aos_py.repl.prompt")
            from aos_py.repl.prompt import _lexer

            _lexer()
        except Exception:  # the main thread imports it again and reports any real problem
            pass

    threading.Thread(target=load, name="aos-prewarm", daemon=True).start()


def run(args: argparse.Namespace) -> int:
    opts = spawn_options(args)
    for f in args.load:
        if not Path(f).expanduser().is_file():
            raise UsageError(f"--load file not found: {f}")
    from aos_py.client import Client, load_wallet

    piped = None if args.run is not None or args.watch or args.list else read_piped_stdin()
    scripted = args.run is not None or piped is not None
    if not scripted and not args.list and not args.watch:
        _prewarm_prompt()
    from aos_py.repl.spinner import Spinner

    data_dir = data_dir_of(args.data_dir)
    wallet_path = Path(args.wallet or os.environ.get("AOS_WALLET") or Path.home() / ".aos.json").expanduser()
    new_wallet = not wallet_path.exists()
    with Spinner("[Starting AOS...]"):   # long work shows on a terminal only (stderr), in every mode
        wallet = load_wallet(args.wallet)
        client = Client.open(data_dir)
    if new_wallet and wallet_path.exists():
        print(render.colour(f"Created a new wallet: {wallet_path}", render.GRAY), file=sys.stderr)
    try:
        show_engine_note(client)
        if args.list:
            print(render.process_table(client.find_processes(wallet.address)))
            return 0
        if args.watch:
            return watch(client, wallet, args.watch, data_dir)
        name = args.name or "default"
        try:
            pid, spawned = find_or_spawn(client, wallet, name, opts)
        except Exception as exc:
            # say what failed (aos's generic "check your access points" text hid the cause)
            print(render.colour(f"Could not find or spawn process '{name}': {exc}", render.RED), file=sys.stderr)
            return 1
        unused = [flag for attr, flag in SPAWN_ONLY if getattr(args, attr)]
        if unused and not spawned:
            print(render.colour(f"Note: {', '.join(unused)} only apply when a process is spawned; "
                                f"'{name}' already exists, so they were not used.", render.GRAY), file=sys.stderr)
        boot = client.result(pid, pid) if spawned else None
        return connect(client, wallet, pid, data_dir, args, piped, scripted, boot)
    finally:
        client.close()


def connect(client, wallet, pid: str, data_dir: Path, args: argparse.Namespace, piped: Iterable[str] | None,
            scripted: bool, boot: dict | None = None) -> int:
    from aos_py.repl.commands import library_version
    from aos_py.repl.session import Session, live_text, load_file

    session = Session(client, wallet, pid, data_dir)
    if not scripted:
        session.write(splash(wallet.address, str(data_dir), remote=bool(getattr(client, "is_remote", False))))
        session.write(f"Your AOS Process: {render.GREEN}{pid}{render.RESET}")
    boot_text = live_text(boot) if boot else None
    if boot_text:   # what the process printed when it booted (On-Boot), or its boot error
        session.write(boot_text)
    if args.monitor:
        try:
            client.monitor(pid)
        except Exception as exc:
            session.write(render.colour(f"Could not start monitoring: {exc}", render.RED))
    ok = True
    for f in args.load:
        ok = load_file(session, f) and ok
    if args.run is not None:
        session.dryrun = args.dry_run
        if not args.run.strip():
            return 0 if ok else 1
        session.blank_after_result = False    # --run prints the result and nothing after it
        return 0 if session.evaluate(args.run) and ok else 1
    if piped is not None:
        session.dryrun = args.dry_run
        errors = session.errors
        run_lines(session, piped)
        return 0 if ok and session.errors == errors else 1
    try:
        version = session.probe()
    except Exception as exc:
        print(render.colour(f"Could not connect to process! Exiting...\n{exc}", render.RED), file=sys.stderr)
        return 1
    expected = library_version()
    if version and expected and version != expected:
        session.write(render.colour("A new AOS update is available. run [.update] to install.", render.YELLOW))
    from aos_py.repl.prompt import Repl

    if args.dry_run:
        session.dryrun = True
        session.write("Dryrun Mode Engaged")
    return Repl(session).run()


def run_lines(session, lines: Iterable[str] | str) -> None:
    """Piped input, read as typed at the prompt: dot-commands run, each complete Lua chunk is evaluated and
    its result printed, and a chunk the Lua compiler finds unfinished continues onto the next line."""
    from aos_py.repl.commands import EditorState, ExitShell, dispatch, editor_line
    from aos_py.repl.syntax import is_incomplete

    editor = EditorState()
    chunk: list[str] = []
    try:
        for line in lines.splitlines() if isinstance(lines, str) else lines:
            line = line.rstrip("\r\n")
            if editor.active:
                editor_line(session, line, editor)
                continue
            if not chunk:
                if not line.strip():
                    continue
                if line.lstrip().startswith(".") and dispatch(session, line.strip(), editor):
                    continue
            chunk.append(line)
            code = "\n".join(chunk)
            if not is_incomplete(code):
                chunk = []
                session.evaluate(code)
    except ExitShell:
        return
    if chunk:   # the input ended inside a chunk: evaluating it shows where
        session.evaluate("\n".join(chunk))
    if editor.active and editor.lines:
        session.write(render.colour("ERROR: the input ended in .editor mode without .done; nothing sent.",
                                    render.RED))


def watch(client, wallet, target: str, data_dir: Path) -> int:
    """--watch: print everything a process prints, its Evals' output included (also after the node changes
    hands), until Ctrl-C. A name is one of your processes; an unknown process is an error, not a silent wait."""
    import threading

    from aos_py.repl.session import Session

    pid: str | None = target
    if not PROCESS_ID_RE.match(target):
        rows = client.find_processes(wallet.address, target)
        pid = rows[0]["id"] if rows else None
    if pid is None or client.process_info(pid) is None:
        print(render.colour(f"Process {target} does not exist on this node ({data_dir}).", render.RED),
              file=sys.stderr)
        return 1
    print(f"Watching: {pid}", flush=True)
    session = Session(client, wallet, pid, data_dir, spinner=False, watch=True)
    session.start_live()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        session.stop_live()
    return 0


if __name__ == "__main__":
    sys.exit(main())
