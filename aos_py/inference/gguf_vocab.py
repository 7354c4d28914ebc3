"""Tokenizer vocabularies for the project's test models, learned from text the project writes itself.

Two kinds, as llama-family GGUF files carry them:
- SentencePiece ("llama"): pieces with scores learned by a small BPE pass over the text (spaces as U+2581),
  byte-fallback tokens <0x00>..<0xFF>, control tokens.
- GPT-2 byte-level BPE ("gpt2"): the 256 byte characters, merges learned over pre-split words, control tokens.
Both are real enough that tokenizer parity between engines means something (multi-byte pieces, byte
fallback, digits, punctuation runs, whitespace runs).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

# token types as GGUF stores them
TT_NORMAL, TT_UNKNOWN, TT_CONTROL, TT_USER_DEFINED, TT_UNUSED, TT_BYTE = 1, 2, 3, 4, 5, 6
SPM_SPACE = "\u2581"

CORPUS = """\
The quick brown fox jumps over the lazy dog. A llama is a calm animal that lives in the mountains of South America.
Processes on AO talk to each other by sending messages. Each message carries tags, data and a signature.
When a process receives a message it runs its handlers, one after another, and may send new messages in turn.
The scheduler assigns every message a slot number and a timestamp, so that anyone can replay the log and reach the
same state. Nothing that was acknowledged is ever lost; a crash recovers by replaying what was stored.
Why did the llama cross the road? To get to the other side of the pasture, where the grass was greener.
Why do programmers prefer dark mode? Because light attracts bugs. What do you call a sleeping llama? A llama-nap!
I told my computer a joke about networking, but it did not get the packet. Knock knock. Who is there? Lettuce.
Tokens, balances and transfers: Send({ Target = ao.id, Action = "Transfer", Quantity = "100", Recipient = bob }).
local function add(a, b) return a + b end
for i = 1, 10 do print(i * i) end
def greet(name: str) -> str:
    return f"Hello, {name}!"
if (x > 0 && y < 100) { counter += 1; } else { counter = 0; }
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 256 1024 2048 65536 3.14159 2.71828 1,000,000 2026-11-23 08:55:00.
Prices rose by 12.5% in 2024; the answer is 42, not 41 or 43. Call 555-0123 or write to hello@example.org.
Café, naïve, résumé, über, señor, façade, coöperate — words with accents. Ελληνικά, русский, 日本語, 中文, 한국어.
Emoji are bytes too: 🦙 🚀 ✨ 👍 — and the engine must handle them whole.
She said: "It's fine, we'll see; they're here, I'm sure you've heard, he'd go." Don't, won't, can't, isn't.
    Indented lines, tabs\tand  double  spaces,   triple spaces, and trailing spaces\x20\x20\x20
Lists: apples, bananas, cherries; one - two - three; (parentheses) [brackets] {braces} <angles>.
Question: what is the capital of France? Answer: Paris. Question: how many legs does a llama have? Answer: four.
The model reads the prompt, computes the logits for the next token, picks one and feeds it back in again.
A small model knows little, but it can still tell a joke, answer a simple question and say hello politely.
Hello world! Good morning, good evening, good night. Thank you very much. You are welcome. See you later.
""" * 3


@dataclass
class Vocab:
    """A tokenizer as GGUF metadata: model name, tokens, scores, types, merges and special ids."""

    model: str                        # "llama" (SentencePiece) or "gpt2" (byte-level BPE)
    tokens: list[str]
    scores: list[float]
    token_types: list[int]
    merges: list[str] = field(default_factory=list)
    bos_id: int = 1
    eos_id: int = 2
    unk_id: int | None = 0
    pre: str | None = None            # gpt2 pre-tokenizer name
    add_bos: bool = True
    extra_eog: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)


def _learn_merges(words: Counter[tuple[str, ...]], n_merges: int) -> list[tuple[str, str]]:
    """Classic BPE: repeatedly merge the most frequent adjacent pair (ties broken by the pair text)."""
    seqs = [list(w) for w in words]
    freqs = list(words.values())
    pair_count: Counter[tuple[str, str]] = Counter()
    where: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for i, seq in enumerate(seqs):
        for a, b in zip(seq, seq[1:], strict=False):
            pair_count[(a, b)] += freqs[i]
            where[(a, b)].add(i)
    merges: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(merges) < n_merges and pair_count:
        best = max(pair_count.items(), key=lambda kv: (kv[1], kv[0]))
        pair, count = best
        if count < 2:
            break
        a, b = pair
        for i in list(where.pop(pair, ())):
            seq, f = seqs[i], freqs[i]
            for x, y in zip(seq, seq[1:], strict=False):
                pair_count[(x, y)] -= f
                if pair_count[(x, y)] <= 0:
                    del pair_count[(x, y)]
            out: list[str] = []
            j = 0
            while j < len(seq):
                if j + 1 < len(seq) and seq[j] == a and seq[j + 1] == b:
                    out.append(a + b)
                    j += 2
                else:
                    out.append(seq[j])
                    j += 1
            seqs[i] = out
            for x, y in zip(out, out[1:], strict=False):
                pair_count[(x, y)] += f
                where[(x, y)].add(i)
        pair_count.pop(pair, None)
        if a + b not in seen:
            seen.add(a + b)
            merges.append(pair)
    return merges


@lru_cache(maxsize=8)
def spm_vocab(n_pieces: int = 700, text: str = CORPUS, controls: tuple[str, ...] = ("<|user|>", "<|assistant|>"),
              eog: tuple[str, ...] = ()) -> Vocab:
    """A SentencePiece vocabulary: <unk> <s> </s>, chat control tokens, 256 byte tokens, then pieces.
    Controls named in eog also end generation (written as tokenizer.ggml.eot_token_id)."""
    tokens = ["<unk>", "<s>", "</s>", *controls]
    types = [TT_UNKNOWN, TT_CONTROL, TT_CONTROL] + [TT_CONTROL] * len(controls)
    scores = [0.0] * len(tokens)
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        types.append(TT_BYTE)
        scores.append(0.0)
    norm = SPM_SPACE + text.replace(" ", SPM_SPACE)
    words: Counter[tuple[str, ...]] = Counter()
    for line in norm.split("\n"):
        for w in re.findall(f"{SPM_SPACE}*[^{SPM_SPACE}]+|{SPM_SPACE}+", line):
            words[tuple(w)] += 1
    chars = Counter(c for w, f in words.items() for c in w for _ in range(f))
    # characters seen at least twice are pieces; rarer ones (some CJK, emoji) exercise byte fallback
    char_pieces = sorted((c for c, f in chars.items() if f >= 2), key=lambda c: (-chars[c], c))
    merges = _learn_merges(words, max(0, n_pieces - len(char_pieces)))
    known = set(tokens)
    for rank, (a, b) in enumerate(merges):
        piece = a + b
        if piece in known:
            continue
        known.add(piece)
        tokens.append(piece)
        types.append(TT_NORMAL)
        scores.append(-float(rank))
    for rank, c in enumerate(char_pieces):
        if c in known:
            continue
        known.add(c)
        tokens.append(c)
        types.append(TT_NORMAL)
        scores.append(-float(len(merges) + rank))
    return Vocab("llama", tokens, scores, types, bos_id=1, eos_id=2, unk_id=0,
                 extra_eog=[tokens.index(t) for t in eog])


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map of the 256 byte values to printable characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


# An approximation of the llama-3 pre-tokenizer with Python's re (letters = [^\W\d_]); only used for learning.
_PRE_SPLIT = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\w]?[^\W\d_]+|\d{1,3}| ?[^\s\w]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


@lru_cache(maxsize=8)
def bpe_vocab(n_merges: int = 700, text: str = CORPUS) -> Vocab:
    """A GPT-2 byte-level BPE vocabulary (llama-3 style): 256 byte tokens, merged tokens, control tokens."""
    b2u = bytes_to_unicode()
    words: Counter[tuple[str, ...]] = Counter()
    for w in _PRE_SPLIT.findall(text):
        words[tuple(b2u[b] for b in w.encode("utf-8"))] += 1
    merges = _learn_merges(words, n_merges)
    tokens = [b2u[b] for b in range(256)]
    known = set(tokens)
    kept: list[str] = []
    for a, b in merges:
        if a + b in known:
            continue
        known.add(a + b)
        tokens.append(a + b)
        kept.append(f"{a} {b}")
    types = [TT_NORMAL] * len(tokens)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]
    bos = len(tokens)
    tokens += specials
    types += [TT_CONTROL] * len(specials)
    scores = [0.0] * len(tokens)
    return Vocab("gpt2", tokens, scores, types, merges=kept, bos_id=bos, eos_id=bos + 1, unk_id=None,
                 pre="llama-bpe", extra_eog=[bos + 2])


def get_vocab(kind: str) -> Vocab:
    """The vocabulary named kind: "spm" or "bpe"."""
    if kind == "spm":
        return spm_vocab()
    if kind == "bpe":
        return bpe_vocab()
    raise ValueError(f"unknown vocabulary {kind!r}; choose 'spm' or 'bpe'")
