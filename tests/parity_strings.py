"""Seeded, varied strings for tokenizer parity: words, unicode from many scripts, whitespace runs, digits, code."""

from __future__ import annotations

import random

WORDS = ("the llama quick brown fox jumps over lazy dog hello world process message handler token balance "
         "transfer send receive inbox eval local function return end print café naïve über señor").split()
CODE = ["local x = 1", "for i = 1, 10 do print(i) end", "def f(a, b):\n    return a + b", "if (x > 0 && y < 9) {",
        "Send({ Target = ao.id, Action = \"Ping\" })", "x += 1; y -= 2;", "arr[0] = {'k': [1, 2.5, -3e10]}",
        "#include <stdio.h>", "SELECT * FROM t WHERE id = 42;", "a == b != c <= d >= e", "</s><s>", "\\n\\t\\\\"]
SCRIPTS = [(0x41, 0x7A), (0xC0, 0x17F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF),
           (0x900, 0x97F), (0x3040, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00), (0x1F300, 0x1F64F), (0x300, 0x36F),
           (0x2000, 0x206F), (0x2190, 0x21FF)]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\t\t ", "\u00a0", "\u3000", "    "]
PUNCT = list(".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`") + ["...", "--", "—", "“", "”", "'s", "'ll", "n't"]


def _piece(rng: random.Random, specials: list[str]) -> str:
    kind = rng.random()
    if kind < 0.30:
        w = rng.choice(WORDS)
        return rng.choice([w, w.capitalize(), w.upper()])
    if kind < 0.45:
        return "".join(chr(rng.randint(*rng.choice(SCRIPTS))) for _ in range(rng.randint(1, 6)))
    if kind < 0.58:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
    if kind < 0.70:
        return rng.choice(PUNCT)
    if kind < 0.82:
        return rng.choice(SPACES)
    if kind < 0.92:
        return rng.choice(CODE)
    if kind < 0.97 and specials:
        return rng.choice(specials)
    return chr(rng.randint(0x20, 0x7E))


def parity_strings(n: int = 1000, seed: int = 1, specials: list[str] | None = None) -> list[str]:
    """n strings (the first few are edge cases), each built from 0..12 pieces with optional separators."""
    edge = ["", " ", "  ", "\n", "\t", "a", " a", "a ", "  leading", "trailing  ", "12345678901234567890",
            "🦙", "日本語のテキスト", "\u00e9", "e\u0301", "\x00\x01\x7f", "<s>", "<unk>", "Hello\n\nworld"]
    rng = random.Random(seed)
    out = list(edge)
    while len(out) < n:
        parts = []
        for _ in range(rng.randint(1, 12)):
            parts.append(_piece(rng, specials or []))
            if rng.random() < 0.5:
                parts.append(" ")
        out.append("".join(parts))
    return out[:n]
