"""The interactive prompt: prompt-toolkit line editing, highlighting, completion, continuation, live output.

Live messages arrive on a node thread; printing them while `patch_stdout` is active makes prompt-toolkit draw
them above the input line and redraw what the user was typing, so nothing typed is lost.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from prompt_toolkit import PromptSession
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.patch_stdout import patch_stdout

from aos_py.repl import render
from aos_py.repl.commands import EditorState, ExitShell, blueprint_names, dispatch, editor_line
from aos_py.repl.complete import ProcessCompleter, keys_snippet, parse_keys
from aos_py.repl.history import ProcessHistory, history_path
from aos_py.repl.session import Session
from aos_py.repl.syntax import is_incomplete


def _lexer():
    from prompt_toolkit.lexers import PygmentsLexer
    from pygments.lexers.scripting import LuaLexer

    return PygmentsLexer(LuaLexer)


BACK_UP = "\x00editor-back-up\x00"
EXIT_HINT = "(To exit, press Ctrl-C again or Ctrl-D, or type .exit)"


def _key_bindings(editor: EditorState, on_clear: Callable[[], None] = lambda: None) -> KeyBindings:
    kb = KeyBindings()

    @Condition
    def editor_line_empty() -> bool:
        from prompt_toolkit.application import get_app

        return editor.active and bool(editor.lines) and get_app().current_buffer.text == ""

    @kb.add("backspace", filter=editor_line_empty)
    def _back_up(event) -> None:
        """Backspace on an empty editor line re-opens the previous line for editing (as aos does)."""
        event.app.exit(result=BACK_UP)

    @kb.add("enter")
    def _enter(event) -> None:
        buf = event.current_buffer
        if buf.complete_state and buf.complete_state.current_completion:
            buf.apply_completion(buf.complete_state.current_completion)
            return
        if not editor.active and is_incomplete(buf.text):
            buf.insert_text("\n")
        else:
            buf.validate_and_handle()

    @kb.add("c-c")
    def _interrupt(event) -> None:
        """Ctrl-C clears the line; on an empty line the loop decides (hint, exit, or leave editor mode)."""
        buf = event.current_buffer
        if buf.text:
            buf.reset()
            on_clear()
        else:
            event.app.exit(exception=KeyboardInterrupt())

    return kb


class Repl:
    """The interactive loop around a Session."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.editor = EditorState()
        self._default = ""
        self._exit_armed = False   # Ctrl-C on an empty line said "press again to exit"
        self._typed_prompt = ""    # the prompt the last line was typed at (echoed with it)
        self.completer = ProcessCompleter(self._fetch_keys, blueprint_names())
        self.history = ProcessHistory(history_path(session.data_dir, session.process_id))
        self.ptk: PromptSession = PromptSession(
            history=self.history,
            lexer=_lexer(),
            completer=self.completer,
            complete_while_typing=False,
            key_bindings=_key_bindings(self.editor, self._disarm),
            prompt_continuation=lambda width, line_no, soft: "... ".rjust(width),
            erase_when_done=True,
        )
        session.on_prompt_change = self._refresh

    def _disarm(self) -> None:
        self._exit_armed = False

    def _refresh(self) -> None:
        app = self.ptk.app
        if app.is_running:
            app.invalidate()

    def _fetch_keys(self, path: str) -> list[str]:
        s = self.session
        res = s.client.dryrun(s.process_id, data=keys_snippet(path), tags=[("Action", "Eval")],
                              owner=s.wallet.address)
        return parse_keys(render.output_text(res) or "") if not res.get("Error") else []

    def _message(self):
        return ANSI("" if self.editor.active else self.session.prompt_text())

    def read(self) -> str:
        """One submitted input; EOFError on Ctrl-D, KeyboardInterrupt on Ctrl-C on an empty line."""
        self.ptk.app.erase_when_done = not self.editor.active
        default, self._default = self._default, ""
        colour = getattr(sys.stdout, "colour", True)
        with patch_stdout(raw=True):
            # live output printed above the prompt keeps bytes that are not UTF-8 visible too
            sys.stdout = render.DisplayStream(sys.stdout, colour=colour)
            text = self.ptk.prompt(self._message, default=default)
        self._typed_prompt = "" if self.editor.active else self.session.prompt_text()
        if text == BACK_UP and self.editor.lines:
            self._default = self.editor.lines.pop()
            sys.stdout.write("\x1b[1A\x1b[2K\r")  # remove the re-opened line from the screen
            sys.stdout.flush()
            return self.read()
        return text

    def handle(self, text: str) -> None:
        s = self.session
        if self.editor.active:
            editor_line(s, text, self.editor)
            return
        if not text.strip():
            s.write(self._typed_prompt)
            s.write()
            return
        s.write(render.echo_input(text, self._typed_prompt))
        if text.lstrip().startswith(".") and dispatch(s, text.strip(), self.editor):
            return
        s.evaluate(text)
        self.completer.invalidate()

    def interrupted(self) -> bool:
        """Ctrl-C on an empty line: leaves editor mode; else says how to exit, and exits when pressed again.
        Returns True when the shell should exit."""
        s = self.session
        if self.editor.active:
            self.editor.lines = None
            s.write(render.colour("Editor cancelled; nothing sent.", render.GRAY))
            return False
        if self._exit_armed:
            return True
        self._exit_armed = True
        s.write(s.prompt_text())  # the erased prompt stays in the scrollback, as a terminal shows it
        s.write(render.colour(EXIT_HINT, render.GRAY))
        return False

    def run(self) -> int:
        """Read-eval-print until .exit, Ctrl-D or Ctrl-C twice on an empty line; history is saved per line."""
        s = self.session
        s.start_live()
        try:
            while True:
                try:
                    text = self.read()
                except EOFError:
                    s.write("Exiting...")
                    return 0
                except KeyboardInterrupt:
                    if self.interrupted():
                        s.write("Exiting...")
                        return 0
                    continue
                self._exit_armed = False
                try:
                    self.handle(text)
                except ExitShell:
                    s.write("Exiting...")
                    return 0
                except KeyboardInterrupt:
                    s.write()
                except Exception as exc:  # one failed command must not end the session
                    s.write(render.colour(f"Error: {type(exc).__name__}: {exc}", render.RED))
        finally:
            self.history.save()
            s.stop_live()
