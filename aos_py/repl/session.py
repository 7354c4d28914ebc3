"""One connected aos session: evaluating Lua in the process, printing results, the live feed.

Everything here is terminal-agnostic except for writing text; the interactive prompt lives in prompt.py and
the dot-commands in commands.py. All network work goes through aos_py.client.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from aos_py.repl import render
from aos_py.repl.spinner import Spinner

DEFAULT_PROMPT = "aos> "
WAIT_SLICE = 30.0
WATCH_SECONDS = 1.0
SEEN_LIMIT = 10_000
CATCH_UP_PAGE = 100
HINT_AFTER = 1.0
_LLAMA_RE = re.compile(r"\bLlama\s*\.\s*load\b|require\s*\(?\s*[\"']llama[\"']")


def _is_timeout(exc: BaseException) -> bool:
    return "timeout" in type(exc).__name__.lower()


class Session:
    """A wallet talking to one process through a Client: eval, dry-run, printing and live messages."""

    def __init__(self, client: Any, wallet: Any, process_id: str, data_dir: Path,
                 out: TextIO | None = None, spinner: bool | None = None, watch: bool = False) -> None:
        self.client = client
        self.watch = watch                # --watch: show everything the process prints, Evals included
        self.blank_after_result = True    # a blank line after each result, as at the prompt (not for --run)
        self.wallet = wallet
        self.process_id = process_id
        self.data_dir = data_dir
        self.out = out
        self.spinner = spinner
        self.prompt = DEFAULT_PROMPT
        self.dryrun = False
        self.live = True
        self._held: list[str] = []
        self._evaluating = False          # an Eval of ours is in flight: live output waits for its result
        self._deferred: list[str] = []
        self._live_during_eval = False
        self._sent: set[str] = set()
        self._abandoned: set[str] = set()
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._stop_watch = threading.Event()
        self._seen: dict[str, None] = {}
        self._cursor: int | None = None
        self._saved_cursor: int | None = None
        self.errors = 0                   # failed evaluations and dot-command ERROR lines (scripts' exit status)
        self.on_prompt_change: Callable[[], None] | None = None

    # ---- output -------------------------------------------------------------------------------------------

    def write(self, text: str = "") -> None:
        """Print a line; resolves sys.stdout at call time so prompt_toolkit's patch_stdout can route it."""
        stream = self.out or sys.stdout
        if "ERROR" in text[:16] and render.strip_ansi(text).startswith("ERROR"):
            self.errors += 1
        Spinner.clear_current()
        with self._lock:
            stream.write(text + "\n")
            stream.flush()

    def prompt_text(self) -> str:
        """The prompt to draw: the process's own, with a red `*` in front in dry-run mode."""
        return (f"{render.RED}*{render.RESET}" if self.dryrun else "") + self.prompt

    def _set_prompt(self, result: dict) -> None:
        new = render.result_prompt(result)
        if new is not None and new != self.prompt:
            self.prompt = new
            if self.on_prompt_change:
                self.on_prompt_change()

    # ---- evaluation ---------------------------------------------------------------------------------------

    def run_eval(self, code: str) -> dict:
        """Send `code` as an Eval (or dry-run it) and return the process's result."""
        eval_tags = [("Action", "Eval")]
        if self.dryrun:
            with Spinner("[Dry-running...]", enabled=self.spinner):
                return self.client.dryrun(self.process_id, data=code, tags=eval_tags, owner=self.wallet.address)
        with Spinner("[Dispatching Message...]", enabled=self.spinner) as spin:
            mid = self.client.send(self.wallet, self.process_id, data=code, tags=eval_tags)
            self._sent.add(mid)
            spin.update(f"[Computing {mid}...]")
            if _LLAMA_RE.search(code):
                spin.status = _llama_hint(mid, time.monotonic())
            while True:
                try:
                    return self.client.wait_result(self.process_id, mid, timeout=WAIT_SLICE)
                except KeyboardInterrupt:
                    self._sent.discard(mid)
                    self._abandoned.add(mid)
                    raise
                except Exception as exc:
                    if not _is_timeout(exc):
                        raise
                    spin.status = None
                    spin.update(f"[Computing {mid}... still running, Ctrl-C stops waiting]")

    def evaluate(self, code: str, origin: Callable[[int], tuple[Path, int] | None] | None = None,
                 echo: bool = False, base: Path | None = None) -> bool:
        """Evaluate and print as aos does; True when the process reported no error."""
        if echo:
            self.write(render.echo_input(code))
        with self._lock:
            self._evaluating = not self.dryrun
        try:
            try:
                result = self.run_eval(code)
            except KeyboardInterrupt:
                self.errors += 1
                self.write(render.colour("Stopped waiting; the result will show in the live feed.", render.GRAY))
                return False
            except Exception as exc:  # a client error: say what failed, keep the shell alive
                self.errors += 1
                self.write(render.colour(f"Error: {exc}", render.RED))
                self.write()
                return False
            ok = self.show_result(result, code, origin, base)
            if not ok:
                self.errors += 1
            return ok
        finally:
            self._end_evaluation()

    def _end_evaluation(self) -> None:
        """Print the live output that arrived while our Eval was in flight (after its result, as aos shows it),
        and take the prompt from the process's newest result: a message computed after our Eval (one it sent
        to itself, say) has a newer Inbox count than the Eval's own result."""
        with self._lock:
            deferred, self._deferred = self._deferred, []
            newer, self._live_during_eval = self._live_during_eval, False
            self._evaluating = False
        for text in deferred:
            self._show_live(text)
        if newer:
            try:
                rows = self.client.results(self.process_id, limit=1, sort="DESC")
            except Exception:  # the prompt stays as the Eval left it
                return
            if rows:
                self._set_prompt(rows[0]["result"])

    def show_result(self, result: dict, code: str,
                    origin: Callable[[int], tuple[Path, int] | None] | None = None, base: Path | None = None) -> bool:
        self._set_prompt(result)
        error = result.get("Error")
        if error:
            text = error if isinstance(error, str) else str(error)
            self.write(render.format_error(text, code, origin, base))
            if self.blank_after_result:
                self.write()
            return False
        text = render.output_text(result)
        if text is None:
            self.write(render.colour(render.UNKNOWN_ERROR, render.RED))
        elif text:
            self.write(text)
        if self.blank_after_result:
            self.write()
        return True

    def probe(self) -> str | None:
        """Ask the process its library version (as aos does on connect); sets the prompt."""
        result = self.run_eval("require('.process')._version")
        self._set_prompt(result)
        if result.get("Error"):
            return None
        return render.strip_ansi(render.output_text(result) or "").strip() or None

    # ---- live feed ----------------------------------------------------------------------------------------

    def cursor_path(self) -> Path:
        return self.data_dir / "cursors" / f"{self.process_id}.txt"

    def start_live(self) -> None:
        """Subscribe to the process; first show what it printed since this shell last left (as aos's cursor does).

        Our own Evals (from any earlier session or `--run` of this wallet) are not shown again: their results
        were printed when they ran. A watcher starts at the process's newest result and keeps no cursor."""
        if self._unsubscribe is None:
            try:
                if self.watch:
                    raise ValueError("a watcher starts now")
                self._cursor = int(self.cursor_path().read_text().strip())
                self._saved_cursor = self._cursor
            except (OSError, ValueError):
                self._cursor = self._latest_cursor()
            self._unsubscribe = self.client.subscribe(self.process_id, self.on_message)
            try:
                self.catch_up()
            except Exception:
                pass
            self.save_cursor()
            self._stop_watch = threading.Event()
            threading.Thread(target=self._watch_node, name="aos-node-watch", daemon=True).start()

    def _latest_cursor(self) -> int | None:
        try:
            rows = self.client.results(self.process_id, limit=1, sort="DESC")
        except Exception:
            return None
        return rows[0]["cursor"] if rows else None

    def save_cursor(self, cursor: int | None = None) -> None:
        """Remember how far this shell has shown the process's output (read back by the next start)."""
        cursor = self._cursor if cursor is None else cursor
        if self.watch or cursor is None or cursor == self._saved_cursor:
            return
        try:
            self.cursor_path().parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cursor_path().with_suffix(".tmp")
            tmp.write_text(str(cursor))
            tmp.replace(self.cursor_path())
            self._saved_cursor = cursor
        except OSError:
            pass

    def stop_live(self) -> None:
        if self._unsubscribe is not None:
            self._stop_watch.set()
            self.save_cursor(self._latest_cursor())
            try:
                self._unsubscribe()
            finally:
                self._unsubscribe = None

    def _watch_node(self) -> None:
        """Every second: catch up with the process's results (when another aos hosts the node and exits, this
        call makes the client reconnect or host the node itself, which also re-subscribes the live feed), and
        save the cursor, so that after a crash the next start does not show this session's output again."""
        while not self._stop_watch.wait(WATCH_SECONDS):
            try:
                self.catch_up()
                self.save_cursor()
            except Exception:  # the next tick tries again; the shell reports real failures on use
                pass

    def catch_up(self) -> None:
        """Show results the subscription has not shown (computed while this shell was away, or while the node
        was changing hands); rows it already showed are skipped by id."""
        for _ in range(20):
            try:
                rows = self.client.feed(self.process_id, after=self._cursor, limit=CATCH_UP_PAGE)
            except AttributeError:   # a client without feed(): no sender, so our own Evals cannot be told apart
                rows = self.client.results(self.process_id, after=self._cursor, limit=CATCH_UP_PAGE)
            for row in rows:
                self._cursor = row["cursor"]
                self.on_message({"process": self.process_id, "id": row["id"], "from": row.get("from"),
                                 "action": row.get("action"), "result": row["result"]})
            if len(rows) < CATCH_UP_PAGE:
                return

    def pause(self) -> None:
        self.live = False

    def resume(self) -> list[str]:
        """Turn live output back on and print what arrived meanwhile, in order."""
        self.live = True
        with self._lock:
            held, self._held = self._held, []
        for text in held:
            self.write(text)
        return held

    def is_own(self, event: dict) -> bool:
        """Our own Evals are printed by evaluate(); the live feed shows everything else (a watcher: everything)."""
        if self.watch:
            return False
        if event.get("id") in self._abandoned:
            return False
        if event.get("id") in self._sent:
            return True
        return event.get("from") == self.wallet.address and event.get("action") == "Eval"

    def on_message(self, event: dict) -> None:
        """Subscription callback (a node thread): print what the process printed, above the input line."""
        mid = event.get("id")
        with self._lock:
            if mid in self._seen:
                return
            self._seen[mid] = None
            while len(self._seen) > SEEN_LIMIT:
                self._seen.pop(next(iter(self._seen)))
        if event.get("process") not in (None, self.process_id) or self.is_own(event):
            self._sent.discard(mid)
            return
        result = event.get("result") or {}
        if event.get("id") in self._abandoned:  # an Eval we stopped waiting for: show its outcome now
            self._abandoned.discard(event.get("id"))
            error = result.get("Error")
            text = render.strip_ansi(str(error)) if error else render.output_text(result)
        elif self.watch and event.get("action") == "Eval":
            text = eval_text(result)
        else:
            text = live_text(result)
        with self._lock:
            if self._evaluating:    # shown, and the prompt refreshed, once our Eval's result is printed
                self._live_during_eval = True
                if text:
                    self._deferred.append(text)
                return
        self._set_prompt(result)
        if text:
            self._show_live(text)

    def _show_live(self, text: str) -> None:
        if not self.live:
            with self._lock:
                self._held.append(text)
            return
        self.write(text)


def live_text(result: dict) -> str | None:
    """What the live feed prints for a message computed in the process: printed Output, or a handler error."""
    parts: list[str] = []
    out = result.get("Output")
    if isinstance(out, dict):
        data = out.get("data")
        if out.get("print") and isinstance(data, str) and data:
            parts.append(data)
    elif isinstance(out, str) and out:
        parts.append(out)
    error = result.get("Error")
    if error:
        text = error if isinstance(error, str) else str(error)
        if not any(text.startswith(p) or p in text for p in parts):
            parts.append(text)
    return "\n".join(parts) if parts else None


def eval_text(result: dict) -> str | None:
    """What a watcher prints for an Eval run in the process: what it printed and returned, or its error."""
    error = result.get("Error")
    if error:
        return render.strip_ansi(error if isinstance(error, str) else str(error)).strip() or None
    return render.output_text(result) or None


def _llama_hint(mid: str, start: float) -> Callable[[], str | None]:
    """Spinner text for an Eval that loads a model: say what takes the time (the first use of the wasm engine
    compiles it, then the model is read into memory)."""
    compiled: list[bool] = []

    def status() -> str | None:
        if time.monotonic() - start < HINT_AFTER:
            return None
        if not compiled:
            compiled.append(_wasm_engine_compiled())
        seconds = int(time.monotonic() - start)
        if not compiled[0]:
            return (f"[Computing {mid}: compiling the wasm inference engine (first use only), "
                    f"then loading the model... {seconds} s]")
        return f"[Computing {mid}: loading the model (big models take several seconds)... {seconds} s]"
    return status


def _wasm_engine_compiled() -> bool:
    """Whether the wasm inference engine has been compiled before (its machine code is cached on disk)."""
    try:
        from aos_py.inference.wasm_engine import cache_dir

        return any((cache_dir() / "wasm").glob("llama-*.cwasm"))
    except Exception:  # no wasm engine here: nothing to compile
        return True


def load_file(session: Session, path: str, cwd: Path | None = None) -> bool:
    """`.load`: bundle the file and its requires, show the deployed tree, eval it; errors name the source file."""
    from aos_py.repl.bundle import BundleError, build_bundle, parse_load_argument

    target = parse_load_argument(path)
    if not target:
        session.write(render.colour("ERROR: .load function requires a *.lua file", render.RED))
        return False
    if not target.endswith(".lua"):
        session.write(render.colour("ERROR: .load function requires a *.lua file", render.RED))
        return False
    try:
        bundle = build_bundle(target, cwd)
    except BundleError as exc:
        session.write(render.colour(f"ERROR: {exc}", render.RED))
        return False
    session.write(render.colour(f"Loading... {target}", render.GREEN))
    for warning in bundle.warnings:
        session.write(render.colour(f"warning: {warning}", render.YELLOW))
    session.write("The following files will be deployed:")
    session.write(render.colour(bundle.tree(), render.BLUE))
    return session.evaluate(bundle.code, origin=bundle.origin, base=bundle.main.path.parent)
