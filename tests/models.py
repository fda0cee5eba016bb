"""Tiny, deterministic test models built locally (no hub access): a 0.36 M-parameter CodeGen.

Reusable by any test module that needs a real transformers causal LM on disk::

    from tests.models import build_tiny_codegen
    path = build_tiny_codegen(tmp_dir)   # -> folder loadable by AutoModelForCausalLM / AutoTokenizer

The folder holds a byte-level BPE tokenizer (vocab 2048, trained on a fixed list of stdlib Python sources, so
Python code tokenises into sensible pieces), saved as a CodeGenTokenizer with ``padding_side="left"``, and a
``CodeGenForCausalLM`` (2 layers, width 64, 512 positions) with random weights from a fixed seed. The weights
are random, so the text it writes is gibberish, but it is a real model: batching, padding, sampling, stop
strings and context limits behave exactly as with a pretrained CodeGen.

The session fixtures ``tiny_codegen`` and ``tiny_chat_codegen`` (built once per test session) are defined
here; a test directory's conftest.py imports them (``from tests.models import tiny_codegen``) to use them.
torch/transformers are imported inside the function so that importing this module stays cheap.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

VOCAB_SIZE = 2048
N_POSITIONS = 512
EOS = "<|endoftext|>"
SEED = 1234

# Fixed training corpus: a few pure-Python stdlib modules present in every CPython 3.11+.
_CORPUS = (
    "textwrap.py",
    "string.py",
    "fractions.py",
    "heapq.py",
    "bisect.py",
    "statistics.py",
    "functools.py",
)


def build_tiny_codegen(directory: Path | str) -> Path:
    """Build (or reuse, if already built there) the tiny CodeGen model in `directory`; return the folder."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import CodeGenConfig, CodeGenForCausalLM, CodeGenTokenizer

    out = Path(directory)
    if (out / "config.json").exists() and (out / "tokenizer_config.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = [str(stdlib / name) for name in _CORPUS if (stdlib / name).exists()]
    bpe = ByteLevelBPETokenizer()
    bpe.train(files, vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=[EOS], show_progress=False)
    vocab = bpe.get_vocab()
    merges = _merges(bpe)
    # transformers 5: vocab=/merges= (the old vocab_file=/merges_file= keywords are silently ignored).
    tokenizer = CodeGenTokenizer(vocab=vocab, merges=merges, padding_side="left")
    if len(tokenizer) < VOCAB_SIZE // 2:
        raise RuntimeError(f"tiny tokenizer came out with only {len(tokenizer)} tokens")

    config = CodeGenConfig(
        vocab_size=len(tokenizer),
        n_layer=2,
        n_embd=64,
        n_head=4,
        rotary_dim=8,
        n_positions=N_POSITIONS,
        n_ctx=N_POSITIONS,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(SEED)
    model = CodeGenForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _merges(bpe: object) -> list[tuple[str, str]]:
    """The trained merges, in rank order, read from the tokenizer's serialised model."""
    import json

    model = json.loads(bpe.to_str())["model"]  # type: ignore[attr-defined]
    return [(m.split(" ", 1)[0], m.split(" ", 1)[1]) if isinstance(m, str) else (m[0], m[1]) for m in model["merges"]]


# Chat template of the tiny model's chat variant (the model is random: only the plumbing matters).
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}{% if 'FORBIDDEN' in m['content'] %}{{ raise_exception('refused') }}{% endif %}"
    "<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build_tiny_chat_codegen(directory: Path | str, base: Path | str) -> Path:
    """A copy of the tiny model at `base` whose tokenizer has a chat template (for chat-mode tests)."""
    import shutil

    from transformers import AutoTokenizer

    out = Path(directory)
    if (out / "config.json").exists() and (out / "tokenizer_config.json").exists():
        return out
    shutil.copytree(base, out, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(out, padding_side="left")
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_codegen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session fixture: the tiny CodeGen folder, built once per test session."""
    return build_tiny_codegen(tmp_path_factory.mktemp("tiny-codegen"))


@pytest.fixture(scope="session")
def tiny_chat_codegen(tmp_path_factory: pytest.TempPathFactory, tiny_codegen: Path) -> Path:
    """Session fixture: the tiny CodeGen with a chat template."""
    return build_tiny_chat_codegen(tmp_path_factory.mktemp("tiny-chat-codegen"), tiny_codegen)
