"""The demo model: a tiny llama-architecture model trained by the project to tell one-line jokes and answer
simple questions, in the Phi-3 chat layout (see data.py). Both engines run it; the Llama Joker example and
the local Llama Herder workers use it so that aos-py works offline with no downloaded model.

    <|system|>\\nTell a joke on the given topic, on one line<|end|>\\n<|user|>\\nTopic: llamas<|end|>\\n<|assistant|>\\n
"""

from __future__ import annotations

from pathlib import Path

DEMO_MODEL_FILE = "demo-model.gguf"


def demo_model_path() -> Path:
    """Path of the committed demo model GGUF (shipped inside the package)."""
    return Path(__file__).resolve().parent / DEMO_MODEL_FILE
