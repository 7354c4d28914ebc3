"""`aos test [PATHS...]`: run busted-style Lua spec files, each on its own in-memory AO node, in parallel.

Output: one line per failing test (`FAIL file:line: full name: message (expected: X, actual: Y)` or
`ERROR file:line: full name: error`), every test with --verbose, and the closing line
`N passed, N failed[, N skipped]`. Exit status: 0 when nothing failed, 1 when a test failed or errored,
2 for usage errors (bad options, a path that does not exist, no spec files).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from aos_py.testing.spec import FileResult, TestRecord, run_file

SPEC_SUFFIXES = ("_spec.lua", "_test.lua")
DEFAULT_DIRS = ("spec", "test")


class UsageError(Exception):
    """A usage error: exit status 2."""


# -- discovery -------------------------------------------------------------------------------------

def _shown(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def discover(paths: list[str]) -> list[str]:
    """Spec files named by `paths` (files as given; directories searched for *_spec.lua / *_test.lua)."""
    if not paths:
        paths = [d for d in DEFAULT_DIRS if Path(d).is_dir()]
        if not paths:
            raise UsageError("no spec files: there is no spec/ or test/ directory here (name files or directories)")
    found: list[str] = []
    seen: set[str] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            files = [p]
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*.lua") if f.name.endswith(SPEC_SUFFIXES) and f.is_file())
        else:
            raise UsageError(f"no such file or directory: {raw}")
        for f in files:
            key = str(f.resolve())
            if key not in seen:
                seen.add(key)
                found.append(_shown(f))
    if not found:
        raise UsageError(f"no spec files (*_spec.lua, *_test.lua) in {', '.join(paths)}")
    return found


# -- running -------------------------------------------------------------------------------------------

def _worker(job: tuple[str, str | None, bool]) -> dict:
    path, filter_, bail = job
    try:
        return run_file(path, filter_, bail).to_dict()
    except Exception as exc:  # noqa: BLE001 - the file errors; the run goes on
        return FileResult(path, [TestRecord("error", path, 0, f"(running {path})", f"{type(exc).__name__}: {exc}")]
                          ).to_dict()


def _prewarm() -> None:
    """Compile the process library and the testing modules once, before workers fork."""
    from aos_py.runtime import ProcessRuntime
    from aos_py.runtime.sources import read_chunk

    ProcessRuntime().close()
    for rel, name in (("testing/format.lua", "testing.format"), ("testing/luassert.lua", "testing.luassert"),
                      ("testing/busted.lua", "testing.busted"), ("testing/aolite.lua", "testing.aolite"),
                      ("json.lua", "json"), ("utils.lua", ".utils"), ("errorsite.lua", ".errorsite")):
        read_chunk(rel, name)


def run_files(files: list[str], jobs: int, filter_: str | None = None, bail: bool = False) -> Iterator[FileResult]:
    """Results in file order, each as soon as it and the ones before it are done."""
    jobs = max(1, min(jobs, len(files)))
    if jobs == 1:
        for f in files:
            res = FileResult.from_dict(_worker((f, filter_, bail)))
            yield res
            if bail and any(r.status in ("fail", "error") for r in res.records):
                return
        return
    _prewarm()
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    queue = list(files)
    isolate = 0        # after a worker died: this many files run one per pool, to find the one that kills it
    while queue:
        batch = queue[:1] if isolate else list(queue)
        pool = ProcessPoolExecutor(1 if isolate else jobs, mp_context=ctx)
        finished = False
        try:
            futures = [pool.submit(_worker, (f, filter_, bail)) for f in batch]
            for f, fut in zip(batch, futures, strict=True):
                try:
                    res = FileResult.from_dict(fut.result())
                except BrokenProcessPool:
                    if not isolate:
                        isolate = jobs
                        break
                    res = FileResult(f, [TestRecord("error", f, 0, f"(running {f})",
                                                    "the process running this file died (os.exit, a crash, a kill)")])
                queue.pop(0)
                if isolate:
                    isolate -= 1
                yield res
                if bail and any(r.status in ("fail", "error") for r in res.records):
                    return
            finished = True
        finally:   # after --bail (or an interrupt) the files still queued are dropped, the running ones not awaited
            pool.shutdown(wait=finished, cancel_futures=True)


# -- reporting -----------------------------------------------------------------------------------------

def _one_line(text: str | None, limit: int = 600) -> str:
    s = " ".join((text or "").split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _strip_location(message: str, rec: TestRecord) -> str:
    """"spec/x_spec.lua:12: attempt ..." -> "attempt ..." when it repeats the reported location."""
    m = re.match(r"^(.*?):(\d+): ", message)
    if m and (m.group(1) == rec.file or rec.file.endswith(m.group(1))):
        return message[m.end():]
    return message


def describe_failure(rec: TestRecord) -> str:
    """The one report line of a failed or erroring test."""
    where = f"{rec.file}:{rec.line}" if rec.line else rec.file
    msg = _one_line(_strip_location(rec.message or "", rec))
    if rec.status == "fail":
        parts = msg or "assertion failed"
        if rec.expected is not None or rec.actual is not None:
            parts += f" (expected: {_one_line(rec.expected, 300)}, actual: {_one_line(rec.actual, 300)})"
        return f"FAIL {where}: {rec.name}: {parts}"
    return f"ERROR {where}: {rec.name}: {msg or 'error'}"


class Totals:
    def __init__(self) -> None:
        self.passed = self.failed = self.skipped = 0

    def add(self, rec: TestRecord) -> None:
        if rec.status == "pass":
            self.passed += 1
        elif rec.status == "pending":
            self.skipped += 1
        else:
            self.failed += 1

    def line(self) -> str:
        s = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            s += f", {self.skipped} skipped"
        return s


class _Colour:
    def __init__(self, stream) -> None:
        self.on = bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")

    def __call__(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on else text


def report_text(results: Iterable[FileResult], verbose: bool, out, totals: Totals, collected: list) -> None:
    colour = _Colour(out)
    for res in results:
        collected.append(res)
        printed = 0
        for i, rec in enumerate(res.records + [None]):
            while printed < len(res.output) and (rec is None or _output_index(res, printed) <= i):
                print(res.output[printed], file=out)
                printed += 1
            if rec is None:
                break
            totals.add(rec)
            if rec.status in ("fail", "error"):
                kind, rest = describe_failure(rec).split(" ", 1)
                print(f"{colour(kind, '31')} {rest}", file=out)
                if verbose:
                    for extra in _details(rec):
                        print("    " + extra, file=out)
            elif verbose:
                where = f"{rec.file}:{rec.line}"
                if rec.status == "pass":
                    print(f"{colour('PASS', '32')} {where}: {rec.name} ({rec.ms:.1f} ms)", file=out)
                else:
                    reason = f": {_one_line(rec.message)}" if rec.message else ""
                    print(f"{colour('SKIP', '33')} {where}: {rec.name}{reason}", file=out)
        out.flush()


def _output_index(res: FileResult, n: int) -> int:
    """Before which record output line n was printed."""
    return res.output_at[n] if n < len(res.output_at) else 0


def _details(rec: TestRecord) -> list[str]:
    lines = []
    if rec.message and "\n" in rec.message:
        lines += rec.message.strip().splitlines()
    if rec.detail:
        lines += [ln for ln in rec.detail.strip().splitlines() if ln.strip()][:12]
    return lines


def _tap_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("#", "\\#")


def _yaml(text: str | None) -> str:
    import json

    return json.dumps(text if text is not None else "")


def report_tap(results: Iterable[FileResult], out, totals: Totals, collected: list) -> None:
    print("TAP version 13", file=out)
    n = 0
    for res in results:
        collected.append(res)
        printed = 0
        for i, rec in enumerate(res.records + [None]):
            while printed < len(res.output) and (rec is None or _output_index(res, printed) <= i):
                for part in res.output[printed].splitlines() or [""]:
                    print(f"# {part}", file=out)
                printed += 1
            if rec is None:
                break
            totals.add(rec)
            n += 1
            title = _tap_escape(f"{rec.file}: {rec.name}")
            if rec.status == "pass":
                print(f"ok {n} - {title}", file=out)
            elif rec.status == "pending":
                reason = f" {_tap_escape(_one_line(rec.message))}" if rec.message else ""
                print(f"ok {n} - {title} # SKIP{reason}", file=out)
            else:
                print(f"not ok {n} - {title}", file=out)
                print("  ---", file=out)
                print(f"  message: {_yaml(_one_line(_strip_location(rec.message or '', rec)))}", file=out)
                print(f"  severity: {'fail' if rec.status == 'fail' else 'error'}", file=out)
                if rec.expected is not None:
                    print(f"  expected: {_yaml(rec.expected)}", file=out)
                if rec.actual is not None:
                    print(f"  actual: {_yaml(rec.actual)}", file=out)
                print(f"  at: {_yaml(f'{rec.file}:{rec.line}')}", file=out)
                print("  ...", file=out)
        out.flush()
    print(f"1..{n}", file=out)


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str | None) -> str:
    return _XML_BAD.sub("", text or "")


def write_junit(path: str, results: list[FileResult], seconds: float) -> None:
    import xml.etree.ElementTree as ET

    totals = Totals()
    suites = ET.Element("testsuites", name="aos test")
    n_err = n_fail = n_tests = 0
    for res in results:
        s_fail = sum(r.status == "fail" for r in res.records)
        s_err = sum(r.status == "error" for r in res.records)
        s_skip = sum(r.status == "pending" for r in res.records)
        suite = ET.SubElement(suites, "testsuite", name=res.file, file=res.file, tests=str(len(res.records)),
                              failures=str(s_fail), errors=str(s_err), skipped=str(s_skip),
                              time=f"{res.seconds:.3f}")
        classname = re.sub(r"\.lua$", "", res.file).replace("/", ".").replace("\\", ".").lstrip(".")
        for rec in res.records:
            totals.add(rec)
            case = ET.SubElement(suite, "testcase", classname=classname, name=_x(rec.name), file=rec.file,
                                 line=str(rec.line), time=f"{rec.ms / 1000:.4f}")
            if rec.status == "fail":
                el = ET.SubElement(case, "failure", message=_x(_one_line(_strip_location(rec.message or "", rec))),
                                   type="AssertionError")
                el.text = _x(f"{describe_failure(rec)}\nexpected: {rec.expected}\nactual: {rec.actual}\n"
                             f"{rec.detail or ''}")
            elif rec.status == "error":
                el = ET.SubElement(case, "error", message=_x(_one_line(_strip_location(rec.message or "", rec))),
                                   type="LuaError")
                el.text = _x(f"{rec.message or ''}\n{rec.detail or ''}")
            elif rec.status == "pending":
                ET.SubElement(case, "skipped", message=_x(rec.message or "pending"))
        if res.output:
            ET.SubElement(suite, "system-out").text = _x("\n".join(res.output))
        n_err += s_err
        n_fail += s_fail
        n_tests += len(res.records)
    suites.set("tests", str(n_tests))
    suites.set("failures", str(n_fail))
    suites.set("errors", str(n_err))
    suites.set("skipped", str(totals.skipped))
    suites.set("time", f"{seconds:.3f}")
    tree = ET.ElementTree(suites)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


# -- the command ----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aos test",
        description="Run Lua spec files (busted's describe/it, luassert, and aolite's API through "
                    "require('aolite')), each on its own in-memory AO node, in parallel.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="spec files or directories (default: spec/ and test/); directories are searched for "
                        "*_spec.lua and *_test.lua")
    p.add_argument("-v", "--verbose", action="store_true", help="list every test, not only the failures")
    p.add_argument("--filter", metavar="PATTERN",
                   help="run only tests whose full name contains PATTERN (plain text or a Lua pattern)")
    p.add_argument("--bail", action="store_true", help="stop at the first failing test")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report to FILE")
    p.add_argument("--tap", action="store_true", help="write TAP version 13 to stdout (the summary goes to stderr)")
    p.add_argument("-j", "--jobs", metavar="N", type=int, default=None,
                   help="spec files run at once (default: the number of CPU cores)")
    p.add_argument("--data-dir", help=argparse.SUPPRESS)     # global flags of `aos`: accepted, unused
    p.add_argument("--wallet", help=argparse.SUPPRESS)
    return p


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def test_command(argv: list[str]) -> int:
    """`aos test`: returns the exit status (0 all passed, 1 failures, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_intermixed_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if exc.code in (0, None) else 2
    if args.jobs is not None and args.jobs < 1:
        print("aos test: error: -j/--jobs needs a number of 1 or more", file=sys.stderr)
        return 2
    try:
        files = discover(args.paths)
    except UsageError as exc:
        print(f"aos test: error: {exc}", file=sys.stderr)
        return 2
    if args.junit:
        parent = Path(args.junit).expanduser().resolve().parent
        if not parent.is_dir():
            print(f"aos test: error: cannot write {args.junit}: no directory {parent}", file=sys.stderr)
            return 2
    jobs = args.jobs or _cpus()
    started = time.perf_counter()
    totals = Totals()
    collected: list[FileResult] = []
    results = run_files(files, jobs, args.filter, args.bail)
    try:
        if args.tap:
            report_tap(results, sys.stdout, totals, collected)
        else:
            report_text(results, args.verbose, sys.stdout, totals, collected)
    except KeyboardInterrupt:
        print("aos test: interrupted", file=sys.stderr)
        return 130
    seconds = time.perf_counter() - started
    if args.junit:
        try:
            write_junit(args.junit, collected, seconds)
        except OSError as exc:
            print(f"aos test: error: cannot write {args.junit}: {exc}", file=sys.stderr)
            return 2
    if args.tap:
        print(totals.line(), file=sys.stderr)
    else:
        print(totals.line())
    sys.stdout.flush()
    return 0 if totals.failed == 0 else 1


def main(argv: list[str] | None = None) -> int:
    return test_command(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
