"""How results, errors, boxes and the splash look on the terminal, as aos draws them.

Pure string building (no terminal I/O), so the look can be unit-tested.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
DIM = "\x1b[2m"
RED = "\x1b[31m"
GREEN = "\x1b[32m"
YELLOW = "\x1b[33m"
BLUE = "\x1b[34m"
GRAY = "\x1b[90m"

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_AOS_LINE = re.compile(r'\[string "aos"\]:(\d+):\s?')
_CHUNK_PREFIX = re.compile(r'\[string "[^"]*"\]:\d+:\s?')
ERROR_FOOTER = "This error occurred while aos was evaluating the submitted code."
UNKNOWN_ERROR = "An unknown error occurred."


def strip_ansi(text: str) -> str:
    """Text without colour escapes (for width computations and tests)."""
    return ANSI_RE.sub("", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _show_byte(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code - 0xDC00:02X}" if 0xDC80 <= code <= 0xDCFF else "\ufffd"


def show_bytes(text: str) -> str:
    """Text as the terminal shows it: bytes that are not UTF-8 (Lua strings may hold any bytes; they reach
    Python as surrogate escapes) become visible `\\xFF` escapes instead of vanishing or breaking the output."""
    return _SURROGATE.sub(_show_byte, text) if _SURROGATE.search(text) else text


class DisplayStream:
    """A text stream that never drops bytes (show_bytes) and, unless `colour`, drops colour escapes: aos-py's
    output, and with colour=False its output to a file, a pipe or a CI log (or with NO_COLOR set), so
    scripts read the text a person sees, not escape codes."""

    def __init__(self, stream, colour: bool = False) -> None:
        self._stream = stream
        self.colour = colour

    def write(self, text: str) -> int:
        text = show_bytes(text)
        return self._stream.write(text if self.colour else strip_ansi(text))

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


PlainStream = DisplayStream


def plain_streams_unless_terminal() -> None:
    """Swap sys.stdout / sys.stderr for DisplayStreams: colour kept only on a terminal without NO_COLOR."""
    import os
    import sys

    no_colour = bool(os.environ.get("NO_COLOR"))
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, DisplayStream):
            continue
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        setattr(sys, name, DisplayStream(stream, colour=tty and not no_colour))


def colour(text: str, code: str) -> str:
    return f"{code}{text}{RESET}"


def echo_input(code: str, prompt: str | None = None) -> str:
    """The submitted input, in green, after the prompt it was typed at (so a transcript keeps the process name
    and Inbox count); continuation lines get `... ` as the prompt showed them. Without a prompt: gray `> `."""
    first = prompt if prompt is not None else f"{GRAY}> {RESET}"
    cont = "... ".rjust(len(strip_ansi(first))) if prompt is not None else first
    lines = code.split("\n")
    return "\n".join(f"{cont if i else first}{GREEN}{line}{RESET}" for i, line in enumerate(lines))


def output_text(result: dict) -> str | None:
    """The printable Output of a result (aos's handleEvaluationResult), or None when there is none."""
    out = result.get("Output")
    if isinstance(out, dict):
        data = out.get("data")
        if isinstance(data, dict) and "output" in data:
            data = data["output"]
        if data is None:
            return "" if "prompt" in out else None
        return show_bytes(data if isinstance(data, str) else str(data))
    if isinstance(out, str):
        return show_bytes(out)
    return None


def result_prompt(result: dict) -> str | None:
    """The process's prompt carried by a result (Output.prompt), if any."""
    out = result.get("Output")
    if isinstance(out, dict) and isinstance(out.get("prompt"), str):
        return out["prompt"]
    return None


def split_error(error: str) -> tuple[str, str]:
    """Split a process Error into (print log before the error, the error message)."""
    marker = "\x1b[31merror:\n\x1b[0m"
    if marker in error:
        log, _, message = error.rpartition(marker)
        return log.strip("\n"), message
    return "", error


_LOCATION = re.compile(r'(?:\[string "aos"\]|(?:^|(?<=: ))([^:"\[\]\n]+?\.lua)):(\d+):\s?')


def parse_error(message: str) -> tuple[str, int | None, str | None]:
    """(clean message, line, file) of a Lua error.

    The last position in user code wins: `[string "aos"]:N:` (the submitted chunk, file None) or
    `path/file.lua:N:` (a module loaded by .load under its own name). Positions inside the process library
    (`[string ".handlers"]:723:`, `[string ".eval"]:47:`, ...) are dropped from the message.
    """
    plain = strip_ansi(message).strip()
    matches = list(_LOCATION.finditer(plain))
    if not matches:
        return _CHUNK_PREFIX.sub("", plain).strip(), None, None
    last = matches[-1]
    return _CHUNK_PREFIX.sub("", plain[last.end():]).strip(), int(last.group(2)), last.group(1)


# aos 2.0.4 builds the Error text by concatenation, so an error value that is not a string (`error({code = 1})`)
# fails the whole call at this position of its .process module (process-api §6.3), as it does here.
_NOT_A_STRING = re.compile(r'\[string "\.process"\]:\d+: attempt to concatenate an? (\w+) value \(local \'result\'\)')


def _error_note(message: str) -> str | None:
    """A line of explanation for errors whose text alone misleads (none for ordinary errors)."""
    m = _NOT_A_STRING.search(strip_ansi(message))
    if m:
        return (f"(the error value was a {m.group(1)}, not a string: aos can only report string errors, "
                "e.g. error(\"text\") or error(tostring(value)))")
    return None


def _user_line(code: str) -> int | None:
    """The line of a submission that has exactly one non-blank line (where an error without a position in the
    user's code must have come from), else None."""
    filled = [n for n, text in enumerate(code.split("\n"), 1) if text.strip()]
    return filled[0] if len(filled) == 1 else None


def source_frame(lines: list[str], line: int, context: int = 1) -> str:
    """A small code frame: line numbers in a blue gutter, the offending line marked with `>`."""
    lo, hi = max(1, line - context), min(len(lines), line + context)
    width = len(str(hi))
    out = []
    for n in range(lo, hi + 1):
        mark = f"{RED}>{RESET}" if n == line else " "
        out.append(f"{mark} {BLUE}{str(n).rjust(width)} |{RESET} {lines[n - 1]}")
    return "\n".join(out)


def format_error(error: str, code: str, origin=None, base: Path | None = None) -> str:
    """An Eval error as aos shows it: print log, bold message, `in <file>`, a source frame and the footer.

    Every error gets this frame. One without a position in the user's code (raised inside the process library,
    a memory error, an error value that is not a string) names no line: a one-line submission is framed at
    that line (as aos does), a longer one gets no frame. `origin(line) -> (path, local_line) | None` maps
    bundle lines back to files (for .load); an error that names a module file is looked up under `base` (the
    loaded project's folder, else the current one).
    """
    log, message = split_error(error)
    text, line, file = parse_error(message)
    parts = [log] if log else []
    parts.append(f"{BOLD}{text or UNKNOWN_ERROR}{RESET}")
    note = _error_note(message)
    if note:
        parts.append(colour(note, DIM))
    if line is None:
        line = _user_line(code)
    if line is not None:
        src_lines = code.split("\n")
        where = (Path(base or Path.cwd()) / file, line) if file else (origin(line) if origin else None)
        if where:
            path, local = where
            parts.append(colour(f"in {_display_path(path)}", DIM))
            src_lines = _read_lines(Path(path))
            line = local
        if 1 <= line <= len(src_lines):
            parts.append(source_frame(src_lines, line))
    parts.append(colour(ERROR_FOOTER, DIM))
    return show_bytes("\n".join(parts))


def _read_lines(path: Path) -> list[str]:
    """A source file's lines for a frame; any bytes (a Latin-1 file, say) are kept, not refused."""
    try:
        return path.read_bytes().decode("utf-8", "surrogateescape").split("\n")
    except OSError:
        return []


def _display_path(path: Path | str) -> str:
    p = Path(path)
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def box(title: str, lines: list[str], width: int | None = None) -> str:
    """A rounded box with the title inset in the top border (aos's printWithBorder)."""
    term = shutil.get_terminal_size((80, 24)).columns
    inner_max = min(100, max(20, term - 2)) - 4
    wrapped: list[str] = []
    for line in lines:
        if len(strip_ansi(line)) <= inner_max or ANSI_RE.search(line):
            wrapped.append(line)
        else:
            gap = re.search(r"\S {2,}(?=\S)", line)
            indent = " " * (gap.end() if gap and gap.end() < inner_max // 2 else 0)
            wrapped.extend(textwrap.wrap(line, inner_max, subsequent_indent=indent) or [""])
    inner = width or max([len(strip_ansi(x)) for x in wrapped] + [len(title) + 2])
    top = f"╭─ {title} " + "─" * max(0, inner - len(title) - 1) + "╮"
    body = [f"│ {x}{' ' * (inner - len(strip_ansi(x)))} │" for x in wrapped]
    return "\n".join([top, *body, "╰" + "─" * (inner + 2) + "╯"])


def splash(version: str, address: str, data_dir: str, year: int) -> str:
    """The start-up box: welcome line, client version, wallet and where the node keeps its data."""
    return box("AOS", [
        "Welcome to AOS: Your operating system for AO, the decentralized open access supercomputer.",
        f"Client Version: {version}. {year}",
        f"Wallet Address: {address}",
        "─" * 20,
        "Network: Local (embedded aos-py node)",
        f"Data: {data_dir}",
        "Type .help for commands; .exit, Ctrl-D or Ctrl-C twice to leave.",
    ])


HELP_LINES = [
    ".help                    show this help",
    ".load <file.lua>         bundle a Lua file and its local requires into one Eval",
    ".load-blueprint <name>   load a blueprint (apm, token, chat, chatroom, voting, staking, arena)",
    ".editor                  multi-line mode: .done sends, .cancel drops, .delete, .print shows it",
    ".dryrun                  toggle dry-run mode: evaluate without saving state",
    ".monitor / .unmonitor    start / stop cron ticks for this process",
    ".live / .pause           resume / pause live messages",
    ".pad                     edit Lua in $EDITOR and evaluate it on save",
    ".faucet [amount]         get wAR from the local token (default 1 wAR) to pay the Llama Herder",
    ".update                  check the process library version",
    ".exit                    leave (Ctrl-D works too)",
    "Ctrl-C                   clear the line; twice on an empty line: leave (in .editor: cancel)",
    "",
    "An unfinished Lua chunk continues on the next line; Tab completes names from the process.",
    "Docs: https://cookbook_ao.g8way.io",
]


def help_box() -> str:
    return box("Help", HELP_LINES)


def process_table(rows: list[dict]) -> str:
    """--list: name, id, aos-version (the client that spawned it) and creation time of each process the wallet owns."""
    if not rows:
        return box("Processes", ["No processes found for this wallet."])
    names = [r.get("name") or "-" for r in rows]
    versions = [f"aos-{r['version']}" if r.get("version") else "-" for r in rows]
    nw, vw = max(map(len, names)), max(map(len, versions))
    return box("Processes", [f"{GREEN}{n.ljust(nw)}{RESET}  {r.get('id')}  {BLUE}{v.ljust(vw)}{RESET}  "
                             f"{GRAY}{_when(r.get('created'))}{RESET}" for n, v, r in zip(names, versions, rows, strict=True)])


def _when(created: object) -> str:
    """A creation time (ms or s since the epoch) as UTC date and time; anything else as given."""
    import datetime

    if isinstance(created, (int, float)) and created > 0:
        seconds = created / 1000 if created > 10**11 else created
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "" if created is None else str(created)
