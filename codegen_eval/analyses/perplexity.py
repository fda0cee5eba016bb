"""Prompt perplexity, single- vs multi-turn (MTPB): the model's perplexity of the turn instructions under the
multi-turn history and under the single-turn concatenation; hf models directly, OpenAI-compatible servers through
the prompt logprobs that /v1/completions echoes."""

# Token accounting (docs/analyses.md, "Prompt perplexity"):
# - A *context* is a text exactly as the benchmark renders it for the model; the instruction text of a turn is
#   located in it as a character span. Multi-turn: one context per turn t, `render(problem, t, history[:t])`
#   (prefix, earlier instructions and their code, then instruction t), counting instruction t only. Single-turn:
#   the single-turn transform's one prompt, counting every instruction in it.
# - The context is tokenised once, as the hf backend tokenises a prompt (the tokenizer's usual special tokens);
#   a token counts when its character span overlaps an instruction span (so " Print", which carries the space
#   after "#", counts; "#" and the newline do not). Everything else is conditioned on and not counted. A token at
#   position 0 has no prediction and is never counted (MTPB contexts start with the import prefix).
# - Per item and variant: log-likelihood summed over its counted tokens; perplexity exp(-sum / count).

from __future__ import annotations

import itertools
import json
import math
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from codegen_eval.analyses import record_from_json, record_json
from codegen_eval.benchmarks.base import BenchmarkSettings, FullBenchmark
from codegen_eval.errors import BackendError, UsageError
from codegen_eval.metrics import bootstrap_ci, delta_ci
from codegen_eval.records import Problem, TurnOutput

ACCOUNTING = (
    "tokens overlapping the instruction text of each turn (not the '# ' marker, not the newline), in the context "
    "the benchmark renders: multi-turn, turn t's instruction after the prefix and the earlier turns' instructions "
    "and code (history); single-turn, every instruction in the one concatenated prompt; each context tokenised "
    "once; per item exp(-sum of log-probabilities / counted tokens)"
)
# Published prompt perplexities (CodeGen paper, MTPB), for users who have the weights: model -> (multi, single).
PAPER = {"CodeGen-Mono 16.1B": (8.05, 10.25)}
FEW_GROUPS = 20  # below this many problem groups the caveat is printed


# --------------------------------------------------------------------------------------------------------
# What is scored


@dataclass(frozen=True, slots=True)
class Context:
    """One text given to the model and the character spans whose tokens count."""

    text: str
    spans: tuple[tuple[int, int], ...]


# One item under one variant: its contexts, scored together (log-likelihoods and token counts add up).
Job = tuple[Context, ...]


@dataclass(frozen=True, slots=True)
class SpanScore:
    """Summed natural-log probability of the counted tokens, and how many there were."""

    logprob: float
    tokens: int

    @property
    def perplexity(self) -> float:
        return math.exp(-self.logprob / self.tokens) if self.tokens else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {"logprob": self.logprob, "tokens": self.tokens, "perplexity": self.perplexity}


class PromptScorer(Protocol):
    """Scores jobs; a str in place of a SpanScore says why that job could not be scored (e.g. too long)."""

    def score(self, jobs: Sequence[Job]) -> list[SpanScore | str]: ...

    def provenance(self) -> Mapping[str, str]: ...


def overlapping(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int]:
    """Positions of the tokens whose character span [a, b) overlaps one of `spans`; position 0 and zero-width
    tokens (added specials) never count."""
    return [
        i for i, (a, b) in enumerate(offsets) if i > 0 and b > a and any(a < end and b > start for start, end in spans)
    ]


def multi_turn_job(benchmark: FullBenchmark, problem: Problem, history: Sequence[str]) -> Job:
    """One context per turn: the benchmark's rendering of turn t after `history[:t]`, counting instruction t."""
    contexts = []
    for t, turn in enumerate(problem.turns):
        text = benchmark.render(problem, t, [TurnOutput(raw=h, text=h) for h in history[:t]])
        start = text.rfind(turn.instruction)
        if start < 0:
            raise UsageError(f"{problem.id}: turn {t + 1}'s instruction is not in its rendered prompt")
        contexts.append(Context(text, ((start, start + len(turn.instruction)),)))
    return tuple(contexts)


def single_turn_job(single: FullBenchmark, problem: Problem) -> Job:
    """The single-turn transform's one prompt, counting every turn's instruction (located in order)."""
    from codegen_eval.benchmarks.transforms import collapse

    text = single.render(collapse(problem), 0, ())
    spans, cursor = [], 0
    for t, turn in enumerate(problem.turns):
        start = text.find(turn.instruction, cursor)
        if start < 0:
            raise UsageError(f"{problem.id}: turn {t + 1}'s instruction is not in the single-turn prompt")
        spans.append((start, start + len(turn.instruction)))
        cursor = start + len(turn.instruction)
    return (Context(text, tuple(spans)),)


# --------------------------------------------------------------------------------------------------------
# Histories: the code the multi-turn contexts condition on


def reference_history(benchmark: FullBenchmark, problem: Problem) -> tuple[str, ...] | None:
    """The benchmark's reference code per turn, postprocessed as a run would record it; None when it has none."""
    code = benchmark.reference(problem)
    if code is None or len(code) != len(problem.turns):
        return None
    return tuple(benchmark.postprocess(problem, t, c) for t, c in enumerate(code))


def run_histories(run_dir: Path, bench: str, sample_index: int = 0) -> dict[str, tuple[str, ...]]:
    """Problem id -> the postprocessed turn texts of sample `sample_index` in a multi-turn run of `bench`
    (samples that failed to generate are left out)."""
    from codegen_eval.rundir import RunDir

    rundir = RunDir(run_dir)
    config = rundir.read_meta().config or {}
    if config.get("bench") != bench:
        raise UsageError(f"--history {run_dir}: a run of {config.get('bench')!r}, not of {bench!r}")
    if config.get("turns", "multi") != "multi":
        raise UsageError(f"--history {run_dir}: a {config.get('turns')}-turn run; the history needs a multi-turn run")
    out = {
        s.problem_id: tuple(t.text for t in s.turns)
        for s in rundir.samples()
        if s.index == sample_index and s.error is None
    }
    if not out:
        raise UsageError(f"--history {run_dir}: no samples with index {sample_index}")
    return out


# --------------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class ItemPerplexity:
    problem_id: str
    group: str
    multi: SpanScore
    single: SpanScore

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class VariantSummary:
    """One variant over the items: the mean over problem groups of each group's mean item perplexity (with a 95%
    bootstrap CI over groups), and the token-level perplexity exp(-all log-probabilities / all counted tokens)."""

    mean: float
    ci95: tuple[float, float]
    token_level: float
    tokens: int

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class PerplexityResult:
    bench: str
    model: str
    history: str  # "reference", or the run directory whose samples gave the multi-turn code
    items: tuple[ItemPerplexity, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (problem id, why)
    backend: Mapping[str, str] = field(default_factory=dict)  # the scorer's provenance
    accounting: str = ACCOUNTING

    def group_means(self) -> list[tuple[str, float, float]]:
        """(group, mean multi-turn perplexity, mean single-turn perplexity) over each group's items."""
        groups: dict[str, list[ItemPerplexity]] = {}
        for item in self.items:
            groups.setdefault(item.group, []).append(item)
        return [
            (g, float(np.mean([i.multi.perplexity for i in m])), float(np.mean([i.single.perplexity for i in m])))
            for g, m in groups.items()
        ]

    def summary(self, variant: str) -> VariantSummary:
        values = [m if variant == "multi" else s for _, m, s in self.group_means()]
        scores = [i.multi if variant == "multi" else i.single for i in self.items]
        tokens = sum(s.tokens for s in scores)
        token_level = math.exp(-sum(s.logprob for s in scores) / tokens) if tokens else float("nan")
        mean = float(np.mean(values)) if values else float("nan")
        return VariantSummary(mean, bootstrap_ci(values), token_level, tokens)

    def delta(self) -> tuple[float, tuple[float, float]]:
        """Single minus multi mean perplexity with a paired bootstrap 95% CI over groups (positive: the multi-turn
        history makes the instructions more predictable, as the paper reports)."""
        d = [s - m for _, m, s in self.group_means()]
        return (float(np.mean(d)) if d else float("nan"), delta_ci(d))

    def notes(self) -> list[str]:
        out = []
        groups = len(self.group_means())
        if groups < FEW_GROUPS:
            out.append(
                f"caveat: only {groups} problem group(s); the CIs are wide and the means say little about the "
                "benchmark as a whole"
            )
        if self.skipped:
            out.append(f"{len(self.skipped)} item(s) skipped (see 'skipped')")
        return out

    def to_json(self) -> dict[str, Any]:
        delta, delta_ci95 = self.delta()
        return {
            "analysis": "prompt_perplexity",
            "bench": self.bench,
            "model": self.model,
            "history": self.history,
            "accounting": self.accounting,
            "backend": dict(self.backend),
            "multi": self.summary("multi").to_json(),
            "single": self.summary("single").to_json(),
            "single_minus_multi": delta,
            "single_minus_multi_ci95": list(delta_ci95),
            "groups": len(self.group_means()),
            "notes": self.notes(),
            "paper": {model: {"multi": m, "single": s} for model, (m, s) in PAPER.items()},
            "items": [i.to_json() for i in self.items],
            "skipped": [{"problem_id": p, "why": why} for p, why in self.skipped],
        }

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> PerplexityResult:
        """The record back from to_json (the summaries are recomputed from the items)."""
        try:
            return PerplexityResult(
                bench=str(d["bench"]),
                model=str(d["model"]),
                history=str(d["history"]),
                items=tuple(record_from_json(ItemPerplexity, i) for i in d["items"]),
                skipped=tuple((str(s["problem_id"]), str(s["why"])) for s in d.get("skipped", ())),
                backend={str(k): str(v) for k, v in dict(d.get("backend") or {}).items()},
                accounting=str(d.get("accounting", ACCOUNTING)),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise UsageError(f"not a prompt-perplexity record ({e!r})") from None


def perplexity_markdown(result: PerplexityResult, *, per_group: bool = True) -> str:
    multi, single = result.summary("multi"), result.summary("single")
    delta, (lo, hi) = result.delta()
    lines = [
        f"## Prompt perplexity: {result.bench}, {result.model}",
        "",
        f"{len(result.items)} items in {len(result.group_means())} problem groups; multi-turn history: "
        f"{result.history}. Counted: {result.accounting}.",
        "",
        "| prompt | mean perplexity (per problem) | 95% CI | token-level perplexity | counted tokens |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for name, v in (("multi-turn", multi), ("single-turn", single)):
        lines.append(
            f"| {name} | {v.mean:.2f} | [{v.ci95[0]:.2f}, {v.ci95[1]:.2f}] | {v.token_level:.2f} | {v.tokens} |"
        )
    lines += ["", f"single − multi: {delta:+.2f} (paired 95% CI [{lo:+.2f}, {hi:+.2f}])", ""]
    for model, (pm, ps) in PAPER.items():
        lines.append(f"Paper, {model}: multi-turn {pm:.2f}, single-turn {ps:.2f}.")
    lines += [f"\n{note}" for note in result.notes()]
    if per_group:
        lines += ["", "| problem | multi-turn | single-turn |", "| --- | ---: | ---: |"]
        lines += [f"| {g} | {m:.2f} | {s:.2f} |" for g, m, s in result.group_means()]
    if result.skipped:
        lines += ["", "Skipped:", *(f"- {p}: {why}" for p, why in result.skipped)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------
# The measurement


def measure(
    bench: str,
    settings: BenchmarkSettings,
    scorer: PromptScorer,
    *,
    model: str,
    problems: str | None = None,
    limit: int | None = None,
    items_per_group: int | None = None,
    history: Path | None = None,
) -> PerplexityResult:
    """Score every selected item's instructions in both variants. `history`: a multi-turn run whose sample 0
    supplies the code between turns; None: the benchmark's reference solutions."""
    from codegen_eval.benchmarks import build
    from codegen_eval.runner import select

    multi, single = build(bench, settings, "multi"), build(bench, settings, "single")
    chosen = select(multi.load(), problems, limit)
    if items_per_group is not None:
        if items_per_group < 1:
            raise UsageError("--items-per-group must be at least 1")
        taken: dict[str, int] = {}
        kept = []
        for p in chosen:
            taken[p.group] = taken.get(p.group, 0) + 1
            if taken[p.group] <= items_per_group:
                kept.append(p)
        chosen = kept
    if not chosen:
        raise UsageError("no problems selected")
    histories = run_histories(history, bench) if history is not None else None
    skipped: list[tuple[str, str]] = []
    todo: list[tuple[Problem, Job, Job]] = []
    for p in chosen:
        code = histories.get(p.id) if histories is not None else reference_history(multi, p)
        if code is None:
            skipped.append((p.id, "no sample in the history run" if histories is not None else "no reference code"))
            continue
        if len(code) != len(p.turns):
            skipped.append((p.id, f"the history has {len(code)} turns, the problem {len(p.turns)}"))
            continue
        todo.append((p, multi_turn_job(multi, p, code), single_turn_job(single, p)))
    scores = scorer.score([job for _, m, s in todo for job in (m, s)])
    items = []
    for (p, _, _), m, s in zip(todo, scores[0::2], scores[1::2], strict=True):
        why = next((x for x in (m, s) if isinstance(x, str)), None)
        if why is not None or not isinstance(m, SpanScore) or not isinstance(s, SpanScore):
            skipped.append((p.id, why or "not scored"))
        elif m.tokens == 0 or s.tokens == 0:
            skipped.append((p.id, "no instruction tokens"))
        else:
            items.append(ItemPerplexity(p.id, p.group, m, s))
    if not items:
        first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise UsageError(f"no item could be scored{first}")
    return PerplexityResult(
        bench=bench,
        model=model,
        history="reference" if history is None else str(history),
        items=tuple(items),
        skipped=tuple(skipped),
        backend=dict(scorer.provenance()),
    )


# --------------------------------------------------------------------------------------------------------
# Scorers


@dataclass(slots=True)
class _Sequence:
    ids: list[int]
    positions: list[int]  # counted token positions (each > 0)
    job: int


MAX_BATCH_TOKENS = 4096  # rows x longest row per forward pass: bounds the logits' memory (vocab x tokens)


class HFScorer:
    """A transformers causal LM loaded exactly as the hf backend loads it (`--model hf:PATH`, an alias, `-B`)."""

    def __init__(self, model: str, options: Mapping[str, str]) -> None:
        from codegen_eval.backends.hf import HFBackend

        # The prefix cache serves generation only; off unless asked for (measuring it costs a forward pass).
        self.backend = HFBackend(model, {"prefix_cache_mb": "0", **options})
        if self.backend.options.chat:
            raise UsageError("prompt perplexity scores the raw completion prompts; drop -B chat=true")
        if not getattr(self.backend.tokenizer, "is_fast", False):
            raise UsageError(f"prompt perplexity needs a fast tokenizer (character offsets); {model!r} has none")
        size = self.backend.options.batch_size
        self.batch_rows = 8 if size == "auto" else int(size)

    def provenance(self) -> Mapping[str, str]:
        prov = self.backend.provenance()
        keep = ("backend", "model", "resolved_path", "model_class", "dtype", "device", "transformers", "torch")
        return {k: prov[k] for k in keep if k in prov}

    def encode(self, context: Context) -> tuple[list[int], list[int]]:
        """Token ids of the context (as the hf backend tokenises a prompt) and the counted positions."""
        enc = self.backend.tokenizer(context.text, add_special_tokens=True, return_offsets_mapping=True)
        offsets = [(int(a), int(b)) for a, b in enc["offset_mapping"]]
        return list(enc["input_ids"]), overlapping(offsets, context.spans)

    def score(self, jobs: Sequence[Job]) -> list[SpanScore | str]:
        limit = self.backend.max_context
        results: list[SpanScore | str] = [SpanScore(0.0, 0)] * len(jobs)
        sequences: list[_Sequence] = []
        for j, job in enumerate(jobs):
            encoded = sorted((self.encode(c) for c in job), key=lambda e: -len(e[0]))
            if limit is not None and encoded and len(encoded[0][0]) > limit:
                results[j] = f"a context of {len(encoded[0][0])} tokens exceeds the model's {limit}"
                continue
            # A context whose tokens begin another's is scored inside that one's forward pass: causal attention
            # makes the numbers the same, and the tokens are checked equal, not assumed.
            mine: list[_Sequence] = []
            for ids, positions in encoded:
                host = next((s for s in mine if s.ids[: len(ids)] == ids), None)
                if host is None:
                    mine.append(_Sequence(ids, list(positions), j))
                else:
                    host.positions.extend(positions)
            sequences += mine
        sums = self._forward(sequences)
        for seq, (logprob, tokens) in zip(sequences, sums, strict=True):
            current = results[seq.job]
            if isinstance(current, SpanScore):
                results[seq.job] = SpanScore(current.logprob + logprob, current.tokens + tokens)
        return results

    def _forward(self, sequences: Sequence[_Sequence]) -> list[tuple[float, int]]:
        import torch

        model, device, pad = self.backend.model, self.backend.device, self.backend.pad_id
        out: list[tuple[float, int]] = [(0.0, 0)] * len(sequences)
        for batch in _batches(sequences, self.batch_rows):
            width = max(len(sequences[i].ids) for i in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):  # right padding: every row's positions start at 0
                n = len(sequences[i].ids)
                ids[row, :n] = torch.tensor(sequences[i].ids)
                mask[row, :n] = 1
            with torch.no_grad():
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            for row, i in enumerate(batch):
                positions = sequences[i].positions
                if not positions:
                    continue
                at = torch.tensor(positions, device=logits.device)
                logp = torch.log_softmax(logits[row, at - 1].float(), dim=-1)
                picked = logp.gather(1, ids[row, at.cpu()].to(logits.device)[:, None])
                out[i] = (float(picked.double().sum()), len(positions))
        return out


def _batches(sequences: Sequence[_Sequence], rows: int) -> Iterator[list[int]]:
    """Indices by length, in batches of at most `rows` rows and MAX_BATCH_TOKENS padded tokens."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i].ids))
    batch: list[int] = []
    for i in order:
        width = len(sequences[i].ids)  # the longest so far: the order is ascending
        if batch and (len(batch) >= rows or (len(batch) + 1) * width > MAX_BATCH_TOKENS):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


@dataclass(frozen=True, slots=True)
class OpenAIPromptOptions:
    """`-B key=value` options of the perplexity pass against an OpenAI-compatible server."""

    base_url: str = ""  # http://host:port/v1; default $OPENAI_BASE_URL
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 300.0


NOT_SUPPORTED = "prompt perplexity is not supported by this server"


class OpenAIScorer:
    """Prompt logprobs from /v1/completions with `echo: true, logprobs: 1, max_tokens: 0` (max_tokens 1 when a
    server refuses 0; the generated token is dropped). A server that returns none: a UsageError naming that."""

    def __init__(self, model: str, options: Mapping[str, str]) -> None:
        from codegen_eval.backends.base import parse_options

        self.options = parse_options(OpenAIPromptOptions, options, "openai")
        base = self.options.base_url.split(",")[0].strip() or os.environ.get("OPENAI_BASE_URL", "")
        if not base:
            raise UsageError("openai: no server; pass --base-url URL (or set OPENAI_BASE_URL)")
        if not model:
            raise UsageError("openai: name the served model: --model openai:NAME")
        self.base_url = base.rstrip("/")
        self.model = model
        self.api_key = os.environ.get(self.options.api_key_env, "")
        self._max_tokens = 0

    def provenance(self) -> Mapping[str, str]:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url}

    def score(self, jobs: Sequence[Job]) -> list[SpanScore | str]:
        out: list[SpanScore | str] = []
        for job in jobs:
            scored = [self._score_context(context) for context in job]
            out.append(SpanScore(sum((lp for lp, _ in scored), 0.0), sum(n for _, n in scored)))
        return out

    def _score_context(self, context: Context) -> tuple[float, int]:
        reply = self._complete(context.text)
        try:
            logprobs = reply["choices"][0]["logprobs"]
            values = list(logprobs["token_logprobs"])
            starts = [int(x) for x in logprobs["text_offset"]]
        except (KeyError, IndexError, TypeError, ValueError):
            raise UsageError(f"{NOT_SUPPORTED} ({self.base_url}): the reply has no echoed prompt logprobs") from None
        length = len(context.text)
        prompt = [i for i, s in enumerate(starts) if s < length]  # generated tokens start at the prompt's end
        if len(prompt) != len(values[: len(prompt)]) or any(b < a for a, b in itertools.pairwise(starts)):
            raise UsageError(f"{NOT_SUPPORTED} ({self.base_url}): malformed echoed offsets")
        offsets = [(starts[i], starts[i + 1] if i + 1 < len(prompt) else length) for i in prompt]
        counted = overlapping(offsets, context.spans)
        picked = [values[i] for i in counted]
        if not prompt or any(v is None for v in picked):
            raise UsageError(f"{NOT_SUPPORTED} ({self.base_url}): the echoed prompt tokens carry no logprobs")
        return float(sum(float(v) for v in picked)), len(picked)

    def _complete(self, prompt: str) -> Any:
        body = {"model": self.model, "prompt": prompt, "echo": True, "logprobs": 1, "temperature": 0}
        why = ""
        # Some servers refuse max_tokens 0: then one token more (dropped by the offsets above), from then on.
        for max_tokens in dict.fromkeys((self._max_tokens, 1)):
            try:
                reply = self._post({**body, "max_tokens": max_tokens})
            except _Refused as refused:
                why = str(refused)
                continue
            self._max_tokens = max_tokens
            return reply
        raise UsageError(f"{NOT_SUPPORTED} ({self.base_url}): {why}")

    def _post(self, body: Mapping[str, Any]) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            f"{self.base_url}/completions", data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.options.timeout) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as e:
            detail = _first_line(e.read().decode(errors="replace")) or e.reason
            if 400 <= e.code < 500 and e.code not in (401, 403, 404, 429):
                raise _Refused(f"HTTP {e.code}: {detail}") from None
            raise BackendError(f"openai: {self.base_url}/completions answered HTTP {e.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise BackendError(f"openai: cannot reach {self.base_url} ({reason})") from None
        except ValueError:
            raise BackendError(f"openai: {self.base_url}/completions did not answer JSON") from None


class _Refused(Exception):
    """The server refused the request itself (a 4xx other than auth, not found, rate limit)."""


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def make_scorer(model: str, options: Mapping[str, str]) -> PromptScorer:
    """The scorer for `--model`: hf (a folder, hub id or alias) or openai:NAME; anything else is a UsageError."""
    from codegen_eval.backends import resolve_model

    backend, arg = resolve_model(model)
    makers: dict[str, Callable[[str, Mapping[str, str]], PromptScorer]] = {"hf": HFScorer, "openai": OpenAIScorer}
    if backend not in makers:
        raise UsageError(
            f"prompt perplexity needs a model: --model hf:PATH, an alias such as smollm2-135m, or "
            f"openai:NAME (not {model!r})"
        )
    return makers[backend](arg, options)
