""".load bundling: inline a Lua file's local requires into one Eval, and map error lines back.

aos sends a whole project as a single Eval message. We keep its bundle shape (each dependency becomes a
local function whose result is stored in `package.loaded`, the main file goes last) but fix how it finds
the files: requires are read as real Lua string literals (comments skipped), resolved against the requiring
file's folder first and then the main file's folder, `name/init.lua` works, and cycles are reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from aos_py.resources import lua_dir

_IDENT_START = re.compile(r"[A-Za-z_]")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LONG_OPEN = re.compile(r"\[(=*)\[")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", '"': '"', "'": "'", "\n": "\n"}


class BundleError(Exception):
    """A .load project cannot be bundled (missing file, cycle, unreadable source)."""


@dataclass
class Require:
    """One `require "<name>"` found in a source file."""

    name: str
    line: int


@dataclass
class Module:
    """One file of a bundle and the require names that point at it."""

    path: Path
    names: list[str] = field(default_factory=list)
    source: str = ""
    deps: list[Module] = field(default_factory=list)


@dataclass
class Segment:
    """Where one file's text sits inside the bundle (1-based bundle line of the file's first line)."""

    path: Path
    start: int
    count: int


@dataclass
class Bundle:
    """The Lua text to send, the main module, the files in order and a line map for errors."""

    code: str
    main: Module
    modules: list[Module]
    segments: list[Segment]
    warnings: list[str]

    def origin(self, line: int) -> tuple[Path, int] | None:
        """The file and its line for a line number of the bundle, or None for bundle glue lines."""
        for seg in self.segments:
            if seg.start <= line < seg.start + seg.count:
                return seg.path, line - seg.start + 1
        return None

    def tree(self) -> str:
        """The deployed files as an indented tree, main file marked MAIN (as aos shows it)."""
        base = self.main.path.parent
        lines: list[str] = []

        def label(mod: Module) -> str:
            try:
                return str(mod.path.relative_to(base))
            except ValueError:
                return str(mod.path)

        def walk(mod: Module, prefix: str, seen: set[Path]) -> None:
            for i, dep in enumerate(mod.deps):
                last = i == len(mod.deps) - 1
                lines.append(f"{prefix}{'└── ' if last else '├── '}{label(dep)}")
                if dep.path not in seen:
                    walk(dep, prefix + ("    " if last else "│   "), seen | {dep.path})

        lines.append(f"{label(self.main)} MAIN")
        walk(self.main, "", {self.main.path})
        return "\n".join(lines)


def parse_load_argument(arg: str) -> str:
    """The path named after `.load`: the rest of the line, with one pair of surrounding quotes removed."""
    text = arg.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    return text


def _long_bracket_end(src: str, i: int) -> tuple[int, str] | None:
    """If src[i:] opens a long bracket `[==[`, return (index after its close, its contents)."""
    m = _LONG_OPEN.match(src, i)
    if not m:
        return None
    close = "]" + m.group(1) + "]"
    end = src.find(close, m.end())
    if end < 0:
        raise BundleError("unfinished long string or comment")
    body = src[m.end():end]
    if body.startswith("\r\n"):
        body = body[2:]
    elif body.startswith("\n"):
        body = body[1:]
    return end + len(close), body


def _short_string(src: str, i: int) -> tuple[int, str]:
    """Read a quoted Lua string starting at src[i]; return (index after it, its value)."""
    quote = src[i]
    out: list[str] = []
    j = i + 1
    while j < len(src):
        c = src[j]
        if c == quote:
            return j + 1, "".join(out)
        if c == "\n":
            break
        if c == "\\" and j + 1 < len(src):
            nxt = src[j + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                j += 2
                continue
            if nxt == "z":
                j += 2
                while j < len(src) and src[j].isspace():
                    j += 1
                continue
            m = re.match(r"\d{1,3}", src[j + 1:])
            if m:
                out.append(chr(int(m.group(0))))
                j += 1 + len(m.group(0))
                continue
            m = re.match(r"x([0-9A-Fa-f]{2})", src[j + 1:])
            if m:
                out.append(chr(int(m.group(1), 16)))
                j += 4
                continue
            out.append(nxt)
            j += 2
            continue
        out.append(c)
        j += 1
    raise BundleError("unfinished string")


def _tokens(src: str):
    """Yield (kind, value, line) for identifiers, strings and punctuation; comments are skipped."""
    i, line, n = 0, 1, len(src)
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("--", i):
            long = _long_bracket_end(src, i + 2)
            if long:
                line += src.count("\n", i, long[0])
                i = long[0]
            else:
                end = src.find("\n", i)
                i = n if end < 0 else end
        elif c in "\"'":
            end, value = _short_string(src, i)
            yield "string", value, line
            line += src.count("\n", i, end)
            i = end
        elif c == "[" and _LONG_OPEN.match(src, i):
            end, value = _long_bracket_end(src, i)  # type: ignore[misc]
            yield "string", value, line
            line += src.count("\n", i, end)
            i = end
        elif _IDENT_START.match(c):
            m = _IDENT.match(src, i)
            assert m
            yield "name", m.group(0), line
            i = m.end()
        elif src.startswith("..", i):
            width = 3 if src.startswith("...", i) else 2
            yield "punct", src[i:i + width], line
            i += width
        else:
            yield "punct", c, line
            i += 1


def find_requires(source: str) -> list[Require]:
    """Every `require "x"`, `require("x")`, `require [[x]]` call with a literal argument, in order."""
    found: list[Require] = []
    toks = list(_tokens(source))
    for k, (kind, value, line) in enumerate(toks):
        if kind != "name" or value != "require":
            continue
        if k > 0 and toks[k - 1][0] == "punct" and toks[k - 1][1] in ".:":
            continue  # a field called require, e.g. t.require
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        if nxt and nxt[0] == "punct" and nxt[1] == "(":
            nxt = toks[k + 2] if k + 2 < len(toks) else None
        if nxt and nxt[0] == "string":
            found.append(Require(nxt[1], line))
    return found


def _builtin_modules() -> set[str]:
    """Module names the process itself provides (its Lua library), which .load must not bundle."""
    names = {"json", "ao", "llama", "_llama", "string", "table", "math", "coroutine", "utf8", "os", "io", "debug",
             "bit32", "base64", "bint", "crypto", "chance", "apm", "utils", "handlers", "process", "pretty",
             "stringify", "dump", "eval", "default", "boot", "assignment", "handlers-utils"}
    names |= {"." + n for n in names}
    root = lua_dir()
    if root.is_dir():
        for path in root.rglob("*.lua"):
            rel = path.relative_to(root).with_suffix("")
            dotted = ".".join(rel.parts)
            names.update({dotted, "." + dotted})
            if rel.name == "init":
                parent = ".".join(rel.parts[:-1])
                names.update({parent, "." + parent})
    return names


def resolve_module(name: str, requiring: Path, main_dir: Path) -> Path | None:
    """The file a require name refers to: beside the requiring file first, then beside the main file."""
    rel = name.lstrip(".").replace(".", "/")
    if not rel or name.startswith("@"):
        return None
    for base in dict.fromkeys([requiring.parent, main_dir]):
        for candidate in (base / f"{rel}.lua", base / rel / "init.lua"):
            if candidate.is_file():
                return candidate.resolve()
    return None


def _func_name(name: str) -> str:
    return "_loaded_mod_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def build_bundle(path: str | Path, cwd: Path | None = None) -> Bundle:
    """Read `path` and its local requires and produce the single Lua chunk aos sends for `.load`."""
    raw = Path(path).expanduser()
    if not raw.is_absolute():
        raw = (cwd or Path.cwd()) / raw
    if raw.suffix != ".lua":
        raise BundleError(".load function requires a *.lua file")
    if not raw.is_file():
        raise BundleError(f"file not found: {raw}")
    main_path = raw.resolve()
    main_dir = main_path.parent
    builtins = _builtin_modules()
    modules: dict[Path, Module] = {}
    order: list[Module] = []
    warnings: list[str] = []
    claimed: dict[str, Path] = {}

    def read(p: Path) -> str:
        # Lua source is bytes: a file that is not UTF-8 (Latin-1, say) loads as it is; its odd bytes are kept
        # as surrogate escapes here and written into the bundle as Lua escapes (see _chunk).
        try:
            return p.read_bytes().decode("utf-8", "surrogateescape")
        except OSError as exc:
            raise BundleError(f"cannot read {p}: {exc}") from exc

    def visit(p: Path, stack: list[Path]) -> Module:
        if p in stack:
            cycle = " -> ".join(_rel(x, main_dir) for x in stack[stack.index(p):] + [p])
            raise BundleError(f"require cycle: {cycle}")
        if p in modules:
            return modules[p]
        mod = Module(path=p, source=read(p))
        try:
            reqs = find_requires(mod.source)
        except BundleError as exc:
            raise BundleError(f"{_rel(p, main_dir)}: {exc}") from exc
        for req in reqs:
            target = resolve_module(req.name, p, main_dir)
            if target is None:
                if req.name not in builtins and not req.name.startswith("@"):
                    warnings.append(f"{_rel(p, main_dir)}:{req.line}: module '{req.name}' is not a local file; "
                                    "the process must provide it")
                continue
            earlier = claimed.setdefault(req.name, target)
            if earlier != target:
                warnings.append(f"{_rel(p, main_dir)}:{req.line}: require '{req.name}' is {_rel(target, main_dir)} here "
                                f"but {_rel(earlier, main_dir)} elsewhere; package.loaded keeps the one loaded last")
            dep = visit(target, stack + [p])
            if req.name not in dep.names:
                dep.names.append(req.name)
            if dep not in mod.deps:
                mod.deps.append(dep)
        modules[p] = mod
        if p != main_path:
            order.append(mod)
        return mod

    main = visit(main_path, [])
    pieces: list[str] = []
    line = 1
    for mod in order:
        fname = _func_name(mod.names[0])
        # The body is compiled under its own file name, so errors raised in it at any later time (in a
        # handler, say) read "lib/x.lua:12: ..." instead of a line of the bundle.
        chunkname = "@" + _rel(mod.path, main_dir).replace("\\", "/")
        piece = (f"-- module: {_lua_string(mod.names[0])}\nlocal function {fname}()\n"
                 f"  return {_chunk(mod.source, chunkname)}\nend\n")
        piece += "".join(f"_G.package.loaded[{_lua_string(n)}] = {fname}()\n" if i == 0 else
                         f"_G.package.loaded[{_lua_string(n)}] = _G.package.loaded[{_lua_string(mod.names[0])}]\n"
                         for i, n in enumerate(mod.names))
        pieces.append(piece)
        line += piece.count("\n") + 1  # the blank line that joins pieces
    segments = [Segment(main.path, line, max(1, main.source.count("\n") + 1))]
    if _has_raw_bytes(main.source):  # run under its own name, so errors still name the file and its line
        main_name = "@" + _rel(main.path, main_dir).replace("\\", "/")
        pieces.append(f"return {_chunk(main.source, main_name)}")
    else:
        pieces.append(main.source)
    return Bundle("\n".join(pieces), main, order + [main], segments, warnings)


def eval_source(source: str, chunkname: str) -> str:
    """Code for an Eval of `source` (read with surrogate escapes): as it is when it is UTF-8, else wrapped so
    that Lua gets its exact bytes (an Eval's Data travels as text)."""
    return f"return {_chunk(source, chunkname)}" if _has_raw_bytes(source) else source


def _has_raw_bytes(text: str) -> bool:
    """Whether source text holds bytes that are not UTF-8 (read as surrogate escapes)."""
    return any("\udc80" <= c <= "\udcff" for c in text)


def _chunk(source: str, chunkname: str) -> str:
    """Lua that compiles `source` under `chunkname` and runs it, returning what it returns. A UTF-8 source goes
    in a long string (as written); one with other bytes in a quoted string whose escapes give back the bytes."""
    text = _byte_string(source) if _has_raw_bytes(source) else _long_string(source)
    return f"assert(load({text}, {_byte_string(chunkname)}))()"


def _byte_string(text: str) -> str:
    """`text` as a quoted Lua string; bytes that are not UTF-8 (surrogate escapes) become `\\ddd` escapes."""
    out = []
    for c in text:
        if "\udc80" <= c <= "\udcff":
            out.append(f"\\{ord(c) - 0xDC00:03d}")
        elif c in '\\"':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\0":
            out.append("\\000")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _long_string(text: str) -> str:
    """`text` as a Lua long string whose level does not occur in it (the leading newline is dropped by Lua)."""
    if not text.endswith("\n"):
        text += "\n"  # so the text's own last characters cannot join the closing bracket
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[\n{text}]{eq}]"


def _rel(p: Path, base: Path) -> str:
    try:
        return str(p.relative_to(base))
    except ValueError:
        return str(p)
