"""Prompt perplexity (codegen_eval/analyses/perplexity.py) on the tiny CodeGen, against a direct log-likelihood
computation written here from the data files and `model(input_ids).logits`: contexts built by hand (not by the
benchmark), one unbatched forward pass per context, no folding."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from codegen_eval.analyses.perplexity import (
    NOT_SUPPORTED,
    HFScorer,
    OpenAIScorer,
    PerplexityResult,
    measure,
    overlapping,
    perplexity_markdown,
)
from codegen_eval.benchmarks.base import BenchmarkSettings
from codegen_eval.config import RunConfig
from codegen_eval.errors import UsageError
from codegen_eval.runner import Run, execute_run
from tests.conftest import REPO, run_cli
from tests.openai_server import Fault, FaultProxy, Seen

PREFIX = "# Import libraries.\n\nimport numpy as np\n\n"  # the authors' history prefix (protocols/mtpb.md)
PROBLEMS = "1-4"  # short problems: every context fits the tiny model's 512 positions

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


# -- the independent computation ----------------------------------------------------------------------------


def _records() -> dict[str, dict[str, Any]]:
    lines = (REPO / "benchmarks" / "mtpb" / "mtpb.jsonl").read_text().splitlines()
    return {str(r["id"]): r for r in map(json.loads, lines)}


def _references() -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads((REPO / "benchmarks" / "mtpb" / "reference_solutions.json").read_text())
    return data


def hand_contexts(problem: str, case: int) -> tuple[list[tuple[str, list[tuple[int, int]]]], tuple[str, list]]:
    """The multi-turn contexts (one per turn, counting that turn's instruction) and the single-turn prompt
    (counting every instruction), from the data file and the reference solutions."""
    record = _records()[problem]
    inputs = record["inputs"][case]
    prompts = [t.format(**inputs) for t in record["prompts"]]
    code = [c.format(**inputs) for c in _references()[problem]]
    multi = []
    for t, p in enumerate(prompts):
        text = PREFIX + "".join(f"# {q}\n{c}\n\n" for q, c in zip(prompts[:t], code[:t], strict=True)) + f"# {p}\n"
        start = len(text) - 1 - len(p)
        multi.append((text, [(start, start + len(p))]))
    single = PREFIX + "".join(f"# {p}\n" for p in prompts)
    spans, at = [], len(PREFIX)
    for p in prompts:
        spans.append((at + 2, at + 2 + len(p)))
        at += len(p) + 3
    return multi, (single, spans)


def direct_loglik(model: Any, tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> tuple[float, int]:
    enc = tokenizer(text, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    total, count = 0.0, 0
    for i in range(1, len(ids)):
        a, b = offsets[i]
        if any(a < end and b > start for start, end in spans):
            total += float(logp[i - 1, ids[i]])
            count += 1
    return total, count


@pytest.fixture(scope="module")
def tiny_lm(tiny_codegen: Path) -> tuple[Any, Any]:
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_codegen).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_codegen)
    return model, tokenizer


@pytest.fixture(scope="module")
def settings(data_dir: Path) -> BenchmarkSettings:
    return BenchmarkSettings(data_dir=data_dir)


@pytest.fixture(scope="module")
def tiny_result(tiny_codegen: Path, settings: BenchmarkSettings) -> PerplexityResult:
    scorer = HFScorer(str(tiny_codegen), {"batch_size": "3"})
    return measure("mtpb", settings, scorer, model="tiny", problems=PROBLEMS, items_per_group=2)


# -- tests ---------------------------------------------------------------------------------------------------


def test_overlap_rule() -> None:
    # "# Print x\n": '#', ' Print', ' x', '\n' with the instruction "Print x" at [2, 9).
    offsets = [(0, 1), (1, 7), (7, 9), (9, 10)]
    assert overlapping(offsets, [(2, 9)]) == [1, 2]  # ' Print' carries the space before the span: it counts
    assert overlapping([(0, 5), (5, 6)], [(0, 6)]) == [1]  # position 0 has no prediction
    assert overlapping([(0, 1), (0, 0), (1, 3)], [(0, 3)]) == [2]  # zero-width (added special) tokens never count


def test_hf_matches_direct_loglik(tiny_result: PerplexityResult, tiny_lm: tuple[Any, Any]) -> None:
    model, tokenizer = tiny_lm
    assert not tiny_result.skipped
    assert [i.problem_id for i in tiny_result.items] == [f"mtpb/{p}/{c}" for p in range(1, 5) for c in (0, 1)]
    for item in tiny_result.items:
        _, problem, case = item.problem_id.split("/")
        multi, (single, spans) = hand_contexts(problem, int(case))
        m = [direct_loglik(model, tokenizer, text, s) for text, s in multi]
        m_sum, m_count = sum(x for x, _ in m), sum(n for _, n in m)
        s_sum, s_count = direct_loglik(model, tokenizer, single, spans)
        assert item.multi.tokens == m_count and item.single.tokens == s_count
        assert item.multi.logprob == pytest.approx(m_sum, rel=1e-5)
        assert item.single.logprob == pytest.approx(s_sum, rel=1e-5)
        assert item.multi.perplexity == pytest.approx(math.exp(-m_sum / m_count), rel=1e-5)
    # The averages: over groups of the mean over their items; token-level over everything.
    by_group: dict[str, list[float]] = {}
    for item in tiny_result.items:
        by_group.setdefault(item.group, []).append(item.single.perplexity)
    expected = sum(sum(v) / len(v) for v in by_group.values()) / len(by_group)
    assert tiny_result.summary("single").mean == pytest.approx(expected)
    total = sum(i.multi.logprob for i in tiny_result.items) / sum(i.multi.tokens for i in tiny_result.items)
    assert tiny_result.summary("multi").token_level == pytest.approx(math.exp(-total))


def test_batching_does_not_change_the_numbers(
    tiny_codegen: Path, settings: BenchmarkSettings, tiny_result: PerplexityResult
) -> None:
    one = measure(
        "mtpb",
        settings,
        HFScorer(str(tiny_codegen), {"batch_size": "1"}),
        model="tiny",
        problems=PROBLEMS,
        items_per_group=2,
    )
    for a, b in zip(one.items, tiny_result.items, strict=True):
        assert a.multi.tokens == b.multi.tokens
        assert a.multi.logprob == pytest.approx(b.multi.logprob, rel=1e-5)
        assert a.single.logprob == pytest.approx(b.single.logprob, rel=1e-5)


def test_record_round_trip_and_markdown(tiny_result: PerplexityResult) -> None:
    data = json.loads(json.dumps(tiny_result.to_json()))
    assert PerplexityResult.from_json(data) == tiny_result
    assert data["multi"]["tokens"] == sum(i.multi.tokens for i in tiny_result.items)
    text = perplexity_markdown(tiny_result)
    assert "| multi-turn |" in text and "| mtpb/4 |" in text
    assert "caveat: only 4 problem group(s)" in text  # few problems: the statistical caveat
    assert "8.05" in text  # the paper's number beside ours


def test_history_from_a_multi_turn_run(
    tmp_path: Path, data_dir: Path, tiny_codegen: Path, settings: BenchmarkSettings
) -> None:
    """The reference backend writes the reference code, so a run of it as history gives the same numbers."""

    def generated(turns: str) -> Path:
        config = RunConfig(
            bench="mtpb",
            model="reference",
            turns=turns,
            problems="1-2",
            data_dir=str(data_dir),
            output_dir=str(tmp_path / turns),
        )
        return execute_run(Run.create(config, progress=False), ("generate",)).path

    scorer = HFScorer(str(tiny_codegen), {})
    common: dict[str, Any] = {"model": "tiny", "problems": "1-2", "items_per_group": 1}
    from_run = measure("mtpb", settings, scorer, history=generated("multi"), **common)
    from_refs = measure("mtpb", settings, scorer, **common)
    assert from_run.history.endswith("multi") and from_refs.history == "reference"
    assert [i.multi.tokens for i in from_run.items] == [i.multi.tokens for i in from_refs.items]
    for a, b in zip(from_run.items, from_refs.items, strict=True):
        assert a.multi.logprob == pytest.approx(b.multi.logprob, rel=1e-6)
    with pytest.raises(UsageError, match="single-turn run; the history needs a multi-turn run"):
        measure("mtpb", settings, scorer, history=generated("single"), **common)


# -- OpenAI-compatible servers: a proxy that answers with the tiny model's own prompt logprobs ----------------


def echo_rule(
    tiny_lm: tuple[Any, Any], *, refuse_zero: bool = False, logprobs: bool = True
) -> Callable[[int, Seen], Fault | None]:
    """Answers /v1/completions as a server with prompt logprobs would (OpenAI's legacy `logprobs` object),
    computed by the tiny model; max_tokens 1 adds one generated token after the prompt."""
    model, tokenizer = tiny_lm

    def rule(index: int, seen: Seen) -> Fault | None:
        body = seen.body or {}
        if refuse_zero and body.get("max_tokens") == 0:
            return Fault(status=400, body=b'{"error": {"message": "max_tokens must be at least 1"}}')
        prompt = str(body["prompt"])
        enc = tokenizer(prompt, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
        values: list[float | None] = [None] + [float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]
        tokens = [prompt[a:b] for a, b in offsets]
        starts = [a for a, _ in offsets]
        text = prompt
        if body.get("max_tokens"):
            tokens, values, starts, text = [*tokens, "x"], [*values, -0.5], [*starts, len(prompt)], prompt + "x"
        lp = {"tokens": tokens, "token_logprobs": values, "text_offset": starts} if logprobs else None
        reply = {"object": "text_completion", "choices": [{"index": 0, "text": text, "logprobs": lp}]}
        return Fault(status=200, headers=(("Content-Type", "application/json"),), body=json.dumps(reply).encode())

    return rule


@pytest.fixture
def proxy() -> Any:
    fake = FaultProxy("http://127.0.0.1:9")  # every request is answered by the rule; nothing is forwarded
    try:
        yield fake
    finally:
        fake.close()


@pytest.mark.parametrize("refuse_zero", [False, True])
def test_openai_prompt_logprobs_match_hf(
    proxy: FaultProxy,
    tiny_lm: tuple[Any, Any],
    settings: BenchmarkSettings,
    tiny_result: PerplexityResult,
    refuse_zero: bool,
) -> None:
    proxy.set_rule(echo_rule(tiny_lm, refuse_zero=refuse_zero))
    scorer = OpenAIScorer("tiny", {"base_url": proxy.base_url})
    result = measure("mtpb", settings, scorer, model="openai:tiny", problems="1-2", items_per_group=2)
    for a, b in zip(result.items, tiny_result.items[:4], strict=True):
        assert (a.problem_id, a.multi.tokens, a.single.tokens) == (b.problem_id, b.multi.tokens, b.single.tokens)
        assert a.multi.logprob == pytest.approx(b.multi.logprob, rel=1e-5)
        assert a.single.logprob == pytest.approx(b.single.logprob, rel=1e-5)
    posts = proxy.posts()
    assert all(p.body and p.body["echo"] is True and p.body["logprobs"] == 1 for p in posts)
    sent = [p.body["max_tokens"] for p in posts if p.body]
    assert sent[0] == 0 and (sent[1:] == [1] * (len(sent) - 1) if refuse_zero else set(sent) == {0})


def test_openai_without_prompt_logprobs_is_not_supported(
    proxy: FaultProxy, tiny_lm: tuple[Any, Any], settings: BenchmarkSettings
) -> None:
    proxy.set_rule(echo_rule(tiny_lm, logprobs=False))
    scorer = OpenAIScorer("tiny", {"base_url": proxy.base_url})
    with pytest.raises(UsageError, match=NOT_SUPPORTED):
        measure("mtpb", settings, scorer, model="openai:tiny", problems="1", items_per_group=1)


@pytest.mark.slow
def test_transformers_serve_has_no_prompt_logprobs(openai_server: Any, settings: BenchmarkSettings) -> None:
    """A real server that ignores `echo`/`logprobs` (transformers serve): one clear line, not wrong numbers."""
    scorer = OpenAIScorer(str(openai_server.model), {"base_url": openai_server.base_url})
    with pytest.raises(UsageError, match=NOT_SUPPORTED):
        measure("mtpb", settings, scorer, model="openai", problems="1", items_per_group=1)


# -- the command ---------------------------------------------------------------------------------------------


def test_cli_perplexity_json_and_png(tmp_path: Path, tiny_codegen: Path, data_dir: Path) -> None:
    png = tmp_path / "ppl.png"
    args = ["--data-dir", str(data_dir), "--problems", "1-2", "--items-per-group", "1"]
    done = run_cli(
        "analyze", "perplexity", "--model", f"hf:{tiny_codegen}", *args, "--format", "json", "--png", str(png),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [i["problem_id"] for i in data["items"]] == ["mtpb/1/0", "mtpb/2/0"]
    assert data["multi"]["tokens"] > 0 and data["single"]["tokens"] > 0
    assert "caveat: only 2 problem group(s)" in done.stderr
    assert png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        ("reference", [], "prompt perplexity needs a model"),
        ("openai:tiny", ["--base-url", "http://127.0.0.1:9/v1"], "openai: cannot reach http://127.0.0.1:9/v1"),
        ("hf:/nonexistent/model", [], "no such model folder"),
    ],
)
def test_cli_perplexity_errors(tmp_path: Path, model: str, extra: list[str], message: str) -> None:
    done = run_cli("analyze", "perplexity", "--model", model, *extra, "--problems", "1", cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
