"""The engine interface behind `require("llama")`, mirroring aos-llama's Lua API.

Concrete engines (wasm, native) implement a handful of primitives (load, tokenize, eval_tokens, sample, ...);
the text-level calls (set_prompt, next, run, add) are written once here so every engine has the same
semantics, including the fixes over aos-llama: a failed load raises, a prompt longer than the context raises,
and run(n) stops at end-of-generation.
"""

from __future__ import annotations

import codecs
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 2, 3, 4, 5
DEFAULT_N_CTX = 2048


class EngineError(RuntimeError):
    """An inference call failed; the message is meant for the user (it reaches Lua as the error text)."""


class ModelLoadError(EngineError):
    """The model file could not be loaded (missing, truncated, unsupported architecture or tensor type, too big)."""


class ContextFullError(EngineError):
    """The tokens do not fit in the remaining context."""


@dataclass
class SamplingConfig:
    """Token choice: temperature <= 0 is greedy argmax (aos-llama's behaviour); otherwise seeded sampling."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 1234


class Engine(ABC):
    """One model and one context. Not thread-safe: use one engine per worker."""

    def __init__(self, n_ctx: int = DEFAULT_N_CTX) -> None:
        self.n_ctx_requested = n_ctx
        self.log_level = LOG_DEBUG
        self.on_log: Callable[[int, str], None] | None = None
        self.on_progress: Callable[[float], None] | None = None
        self.sampling = SamplingConfig()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    # ---- primitives each engine implements -------------------------------------------------------------
    @abstractmethod
    def load(self, path: str | Path) -> None:
        """Load a GGUF model file; raises ModelLoadError with a clear reason."""

    @abstractmethod
    def tokenize(self, text: str | bytes, add_bos: bool = True, special: bool = True) -> list[int]:
        """Token ids of text; add_bos follows the model's add_bos metadata; special parses control tokens."""

    @abstractmethod
    def token_bytes(self, token: int) -> bytes:
        """The bytes one token stands for (control tokens give b'')."""

    @abstractmethod
    def eval_tokens(self, tokens: Sequence[int]) -> np.ndarray:
        """Append tokens to the context and return the logits at the last position (float32, n_vocab)."""

    @abstractmethod
    def sample(self) -> int:
        """Choose the next token from the current logits with the sampling configuration."""

    @abstractmethod
    def is_eog(self, token: int) -> bool:
        """Whether token ends generation (EOS, EOT and the like)."""

    @abstractmethod
    def reset_context(self) -> None:
        """Forget all context positions (the model stays loaded)."""

    @abstractmethod
    def n_past(self) -> int:
        """Number of positions in the context."""

    @abstractmethod
    def n_ctx(self) -> int:
        """Context size of the loaded model."""

    @abstractmethod
    def info(self) -> str:
        """A one-line description of the engine and the loaded model."""

    @abstractmethod
    def save_state(self) -> bool:
        """Snapshot the context (KV cache and logits)."""

    @abstractmethod
    def load_state(self) -> bool:
        """Restore the snapshot; False when none was saved."""

    @abstractmethod
    def clear_state(self) -> None:
        """Drop the snapshot."""

    @abstractmethod
    def stop(self) -> None:
        """Free the model and the context."""

    @abstractmethod
    def _apply_sampling(self) -> None:
        """Push self.sampling to the backend."""

    # ---- shared behaviour --------------------------------------------------------------------------------
    def set_sampling(self, config: SamplingConfig) -> None:
        """Change how tokens are chosen (greedy by default)."""
        if config.top_p <= 0 or config.top_p > 1:
            raise EngineError(f"top_p must be in (0, 1], got {config.top_p}")
        if config.top_k < 0:
            raise EngineError(f"top_k must be >= 0, got {config.top_k}")
        self.sampling = config
        self._apply_sampling()

    def set_log_level(self, level: int) -> None:
        """Messages above this level (2 error .. 5 debug) are not passed to on_log."""
        self.log_level = int(level)

    def set_callbacks(self, on_log: Callable[[int, str], None] | None,
                      on_progress: Callable[[float], None] | None) -> None:
        """Install the log and load-progress callbacks."""
        self.on_log = on_log
        self.on_progress = on_progress

    def log(self, level: int, text: str) -> None:
        if self.on_log is not None and level <= self.log_level:
            self.on_log(level, text)

    def progress(self, fraction: float) -> None:
        if self.on_progress is not None:
            self.on_progress(fraction)

    def detokenize(self, tokens: Sequence[int]) -> str:
        """Text of a token sequence (invalid UTF-8 replaced)."""
        return b"".join(self.token_bytes(t) for t in tokens).decode("utf-8", errors="replace")

    def _check_fits(self, n: int) -> None:
        if self.n_past() + n > self.n_ctx():
            raise ContextFullError(
                f"{n} tokens do not fit in the context: {self.n_past()} of {self.n_ctx()} positions are used")

    def set_prompt(self, text: str | bytes) -> None:
        """Start a new context from text (with BOS) and process it."""
        tokens = self.tokenize(text, add_bos=True)
        if len(tokens) > self.n_ctx():
            raise ContextFullError(f"the prompt is {len(tokens)} tokens but the context holds {self.n_ctx()}")
        self.reset_context()
        self._decoder.reset()
        self.log(LOG_DEBUG, f"prompt: {len(tokens)} tokens")
        if tokens:
            self.eval_tokens(tokens)

    def add(self, text: str | bytes) -> None:
        """Append text (tokenized with BOS, like aos-llama) to the running context."""
        tokens = self.tokenize(text, add_bos=True)
        self._check_fits(len(tokens))
        if tokens:
            self.eval_tokens(tokens)

    def next(self) -> str | None:
        """The next piece of text, or None at end of generation. A multi-byte character split across tokens
        is returned whole (one call may then consume several tokens)."""
        if self.n_past() == 0:
            raise EngineError("no prompt: call set_prompt first")
        for _ in range(8):
            token = self.sample()
            if self.is_eog(token):
                tail = self._decoder.decode(b"", final=True)
                return tail or None
            self._check_fits(1)
            self.eval_tokens([token])
            text = self._decoder.decode(self.token_bytes(token))
            if text:
                return text
        return self._decoder.decode(b"", final=True)

    def run(self, n: int) -> str:
        """Up to n pieces concatenated; stops early at end of generation."""
        if n < 0:
            raise EngineError(f"run(n) needs n >= 0, got {n}")
        out: list[str] = []
        for _ in range(int(n)):
            piece = self.next()
            if piece is None:
                break
            out.append(piece)
        return "".join(out)

    def generate_greedy(self, prompt_tokens: Sequence[int], n: int) -> list[int]:
        """Greedy continuation of prompt_tokens for n tokens (stops at end of generation), for parity checks."""
        self.reset_context()
        logits = self.eval_tokens(list(prompt_tokens))
        out: list[int] = []
        for _ in range(n):
            token = int(np.argmax(logits))
            if self.is_eog(token):
                break
            out.append(token)
            if len(out) == n:
                break
            logits = self.eval_tokens([token])
        return out
