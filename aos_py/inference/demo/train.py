"""Train the demo model: a tiny llama-architecture joke / Q&A model, written as GGUF that both engines run.

    .venv/bin/pip install -e '.[train,native]'
    .venv/bin/python -m aos_py.inference.demo.train --minutes 20 --out aos_py/inference/demo/demo-model.gguf

The network is written in PyTorch exactly as llama.cpp computes the `llama` architecture (RMSNorm, RoPE on
adjacent pairs, grouped-query attention, SwiGLU), so the trained tensors are stored without any permutation.
Training text is tokenized by llama.cpp itself from the model's own vocabulary, so training and inference
see the same token ids. One CPU thread by default, to leave the machine to others.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from aos_py.inference.demo.data import JOKE_SYSTEM, chat_prompt, dialogues, vocab_text
from aos_py.inference.gguf_models import HParams, random_weights, write_model
from aos_py.inference.gguf_vocab import Vocab, spm_vocab

CONTROLS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")


def demo_vocab() -> Vocab:
    """The demo model's SentencePiece vocabulary, learned from the training text."""
    return spm_vocab(n_pieces=900, text=vocab_text() * 2, controls=CONTROLS, eog=("<|end|>",))


def demo_hparams(n_vocab: int) -> HParams:
    """About 3.4M parameters: small enough to train on one CPU core in minutes, big enough for fluent templates."""
    return HParams(n_vocab=n_vocab, n_embd=256, n_layer=4, n_head=8, n_head_kv=4, n_ff=640, n_ctx=2048)


def _tokenizer(vocab: Vocab, hp: HParams, tmp: Path):  # -> llama_cpp.Llama (vocab only)
    import llama_cpp

    path = write_model(tmp / "vocab.gguf", "llama", vocab, HParams(n_vocab=hp.n_vocab, n_layer=1),
                       random_weights("llama", HParams(n_vocab=hp.n_vocab, n_layer=1), 0))
    return llama_cpp.Llama(str(path), vocab_only=True, verbose=False)


def encode_dialogues(tok, n: int, seed: int, end_id: int) -> list[tuple[list[int], int]]:
    """(token ids with BOS and a final <|end|>, prompt length) for n dialogues."""
    out = []
    for d in dialogues(n, seed):
        p = tok.tokenize(d.prompt.encode(), add_bos=True, special=True)
        full = tok.tokenize((d.prompt + d.answer).encode(), add_bos=True, special=True) + [end_id]
        if full[: len(p)] == p:
            out.append((full, len(p)))
    return out


def build_model(hp: HParams):
    """The PyTorch module mirroring llama.cpp's llama graph."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    hd = hp.head_dim

    class RMSNorm(nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(n))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + hp.rms_eps) * self.weight

    def rope(x, cos, sin):  # x (B, H, T, hd): rotate pairs (2i, 2i+1)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            e, kv = hp.n_embd, hd * hp.n_head_kv
            self.attn_norm, self.ffn_norm = RMSNorm(e), RMSNorm(e)
            self.q, self.k, self.v = nn.Linear(e, e, bias=False), nn.Linear(e, kv, bias=False), nn.Linear(e, kv, bias=False)
            self.o = nn.Linear(e, e, bias=False)
            self.gate, self.up = nn.Linear(e, hp.n_ff, bias=False), nn.Linear(e, hp.n_ff, bias=False)
            self.down = nn.Linear(hp.n_ff, e, bias=False)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            h = self.attn_norm(x)
            q = self.q(h).view(b, t, hp.n_head, hd).transpose(1, 2)
            k = self.k(h).view(b, t, hp.n_head_kv, hd).transpose(1, 2)
            v = self.v(h).view(b, t, hp.n_head_kv, hd).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            rep = hp.n_head // hp.n_head_kv
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.o(a.transpose(1, 2).reshape(b, t, -1))
            h = self.ffn_norm(x)
            return x + self.down(F.silu(self.gate(h)) * self.up(h))

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embd = nn.Embedding(hp.n_vocab, hp.n_embd)
            self.blocks = nn.ModuleList(Block() for _ in range(hp.n_layer))
            self.norm = RMSNorm(hp.n_embd)
            self.out = nn.Linear(hp.n_embd, hp.n_vocab, bias=False)
            inv = hp.rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
            self.register_buffer("inv_freq", inv, persistent=False)

        def forward(self, ids):
            pos = torch.arange(ids.shape[1], dtype=torch.float32)
            ang = pos[:, None] * self.inv_freq[None, :]
            cos, sin = ang.cos(), ang.sin()
            x = self.embd(ids)
            for blk in self.blocks:
                x = blk(x, cos, sin)
            return self.out(self.norm(x))

    return Model()


def export_weights(model, hp: HParams) -> dict[str, np.ndarray]:
    """GGUF tensor names → numpy arrays (rows = outputs), in the order llama.cpp lists them."""
    def t(p) -> np.ndarray:
        return p.detach().float().numpy().copy()

    w = {"token_embd.weight": t(model.embd.weight)}
    for i, b in enumerate(model.blocks):
        p = f"blk.{i}."
        w.update({p + "attn_norm.weight": t(b.attn_norm.weight), p + "attn_q.weight": t(b.q.weight),
                  p + "attn_k.weight": t(b.k.weight), p + "attn_v.weight": t(b.v.weight),
                  p + "attn_output.weight": t(b.o.weight), p + "ffn_norm.weight": t(b.ffn_norm.weight),
                  p + "ffn_gate.weight": t(b.gate.weight), p + "ffn_up.weight": t(b.up.weight),
                  p + "ffn_down.weight": t(b.down.weight)})
    w["output_norm.weight"] = t(model.norm.weight)
    w["output.weight"] = t(model.out.weight)
    return w


def train(out: Path, minutes: float, threads: int, seed: int, batch: int, lr: float, tensor_type: str) -> Path:
    import torch
    from torch.nn import functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    vocab = demo_vocab()
    hp = demo_hparams(len(vocab))
    end_id = vocab.tokens.index("<|end|>")
    with tempfile.TemporaryDirectory() as tmp:
        tok = _tokenizer(vocab, hp, Path(tmp))
        data = encode_dialogues(tok, 30000, seed, end_id)
    print(f"vocab {len(vocab)} tokens, {len(data)} dialogues, "
          f"{sum(len(d) for d, _ in data) / len(data):.1f} tokens each on average", flush=True)
    model = build_model(hp)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f}M parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    deadline = time.monotonic() + minutes * 60
    start = time.monotonic()
    rng = np.random.default_rng(seed)
    step, ema = 0, None
    while time.monotonic() < deadline:
        frac = (time.monotonic() - start) / (minutes * 60)
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        idx = rng.integers(0, len(data), batch)
        seqs = [data[i] for i in idx]
        t_max = max(len(s) for s, _ in seqs)
        ids = torch.zeros((batch, t_max), dtype=torch.long)
        tgt = torch.full((batch, t_max), -100, dtype=torch.long)
        for r, (s, plen) in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            tgt[r, plen - 1: len(s) - 1] = torch.tensor(s[plen:])   # learn the answer and its <|end|>
        logits = model(ids)
        loss = F.cross_entropy(logits.view(-1, hp.n_vocab), tgt.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        step += 1
        if step % 100 == 0:
            print(f"step {step} loss {ema:.3f} ({time.monotonic() - start:.0f}s)", flush=True)
    print(f"trained {step} steps, final loss {ema:.3f}", flush=True)
    path = write_model(out, "llama", vocab, hp, export_weights(model, hp), tensor_type,
                       name="aos-py demo llama (jokes and short answers)")
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)
    _sample(path)
    return path


def _sample(path: Path) -> None:
    """Print a few greedy answers from llama.cpp, to read what the model learned."""
    import llama_cpp

    llm = llama_cpp.Llama(str(path), n_ctx=512, n_threads=1, verbose=False)
    vocab = demo_vocab()
    stop = {vocab.eos_id, *vocab.extra_eog}
    for user, system in (("Topic: llamas", JOKE_SYSTEM), ("Topic: coffee", JOKE_SYSTEM), ("Topic: rain", JOKE_SYSTEM),
                         ("What is AO?", None), ("Hello!", None), ("What is two plus three?", None)):
        toks = llm.tokenize(chat_prompt(user, system).encode(), add_bos=True, special=True)
        out: list[int] = []
        for t in llm.generate(toks, temp=0.0):
            if t in stop or len(out) >= 40:
                break
            out.append(t)
        print(f"{user!r} -> {llm.detokenize(out).decode(errors='replace')!r}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aos_py.inference.demo.train", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("demo-model.gguf")))
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--type", dest="tensor_type", default="F16")
    args = ap.parse_args(argv)
    train(Path(args.out), args.minutes, args.threads, args.seed, args.batch, args.lr, args.tensor_type)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
