"""Hugging Face transformers backend: any causal LM, batched, left-padded, per-sequence stops and seeds."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codegen_eval.backends.base import BackendContext, parse_options, throughput
from codegen_eval.backends.hf import decode
from codegen_eval.backends.hf.cache import _cache_kwarg, _kv_bytes_per_token, _PrefixCache
from codegen_eval.backends.hf.load import (
    SMOLLM2_ALIAS,
    HFOptions,
    _digest_files,
    _resolved_path,
    _transformers,
    check_model_ref,
    load_model,
    require_extra,
    resolve_smollm2,
)
from codegen_eval.chat import SYSTEM_INSTRUCTION
from codegen_eval.errors import UsageError
from codegen_eval.records import Completion, GenerationRequest, SampleMode

if TYPE_CHECKING:
    from codegen_eval.backends.hf.ray_pool import RayPool

log = logging.getLogger(__name__)

_AUTO_BATCH_ROWS = {"cuda": 64, "cpu": 32}  # first try for batch_size=auto; halved on out-of-memory


class HFBackend:
    """Any transformers causal LM (`--model hf:PATH_OR_HUB_ID`). What it guarantees (greedy output independent of
    batch company, seeded sampling the same whatever the batching, texts up to and including the stop that ended
    them) is in docs/backends/hf.md; sampling and stops are decode.py's, pauses and prefix reuse BatchRunner's."""

    name = "hf"
    mode: SampleMode
    keeps_stop_strings = True  # the text runs up to and including the stop string that ended it
    progress: Callable[[int], None] | None = None  # told how many sequences each batch finished (runner's bar)
    PREFILL_ALONE_FROM = 64  # uncached prompt tokens from which a CPU prefill runs alone (_prefill_alone)

    def __init__(self, model: str, options: Mapping[str, str], context: BackendContext | None = None) -> None:
        self.options = opts = parse_options(HFOptions, options, "hf")
        self.mode = "chat" if opts.chat else "completion"
        self.model_arg = model
        self._alias_provenance: dict[str, str] = {}
        self._generate_s = 0.0  # wall time inside generate()
        self._pool: RayPool | None = None
        # The cheap checks first (no torch yet), each one line: the model names something, the extra is installed.
        if not model:
            raise UsageError("backend 'hf' needs a model: --model hf:PATH_OR_HUB_ID")
        self.model_ref = model if model == SMOLLM2_ALIAS else check_model_ref(model)
        if opts.ray_actors > 0:  # a thin driver: the actors load the model (ray_pool.py), the same path on every node
            from codegen_eval.backends.hf.ray_pool import RayPool

            self._pool = RayPool(model, options, opts.ray_actors, opts.ray_address)
            return
        require_extra()  # (converting the alias's GGUF needs transformers too)
        if model == SMOLLM2_ALIAS:
            path, self._alias_provenance = resolve_smollm2()
            self.model_ref = str(path)
        self._weights_digest: dict[str, str] | None = None
        # reused_tokens: tokens whose keys/values came from the prefix cache instead of being computed (shared
        # prompt prefixes, and the sequences a paused batch resumes)
        self.stats = dict.fromkeys(("prompt_tokens", "reused_tokens", "completion_tokens", "oom_retries", "pauses"), 0)
        loaded = load_model(self.model_ref, model, opts)
        self.model: Any = loaded.model
        self.tokenizer: Any = loaded.tokenizer
        self.device, self.dtype = loaded.device, loaded.dtype
        self.eos_ids, self.pad_id, self.max_context = loaded.eos_ids, loaded.pad_id, loaded.max_context
        self._checkpoint_generation = loaded.checkpoint_generation
        auto = opts.batch_size == "auto"
        self._batch_rows = _AUTO_BATCH_ROWS.get(self.device.type, 32) if auto else int(opts.batch_size)
        self._cache_kwarg = _cache_kwarg(self.model)
        self._prefix: _PrefixCache | None = None
        if opts.prefix_cache_mb > 0 and self._cache_kwarg:
            per_token = _kv_bytes_per_token(self.model, self.device, self.pad_id, self._cache_kwarg)
            if per_token:
                self._prefix = _PrefixCache(opts.prefix_cache_mb << 20, per_token)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        started = time.monotonic()
        try:
            if self._pool is not None:
                return self._pool.generate(requests, self.progress)
            return self._generate(requests)
        finally:
            self._generate_s += time.monotonic() - started

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        prepared = self._prepare(requests)
        # Similar budgets and lengths together: less padding, and batches stop at about the same step.
        rows = sorted((r for p in prepared for r in p.rows), key=lambda r: (r.budget, len(r.ids)))
        BatchRunner(self).run_rows(rows)
        out: list[Completion] = []
        for prep in prepared:
            failed = next((r.error for r in prep.rows if r.error is not None), prep.error)
            if failed is not None:
                out.append(Completion(texts=(), error=failed, prompt_tokens=len(prep.ids)))
                continue
            completion_tokens = sum(len(r.generated) for r in prep.rows)
            self.stats["prompt_tokens"] += len(prep.ids)
            self.stats["completion_tokens"] += completion_tokens
            texts = tuple(r.text or "" for r in prep.rows)
            out.append(Completion(texts, None, len(prep.ids), completion_tokens, prep.notes))
        return out

    def _prepare(self, requests: Sequence[GenerationRequest]) -> list[_Prepared]:
        """Each request checked, rendered (chat mode) and tokenised, its budget cut (with a note) to what fits, and
        its rows (one per sample; none for a request that failed)."""
        chat, max_context = self.options.chat, self.max_context
        prepared = [_Prepared(error=_request_error(r)) for r in requests]
        texts: dict[int, str] = {}  # the requests still fine, by index
        for i, (req, prep) in enumerate(zip(requests, prepared, strict=True)):
            if prep.error is None:
                try:
                    texts[i] = self._render(req)
                except Exception as exc:  # a template may refuse some conversations (e.g. a system role)
                    prep.error = f"chat template failed: {type(exc).__name__}: {exc}"
        if texts:
            # Chat templates write their own special tokens; raw prompts get the tokenizer's usual ones.
            encoded = self.tokenizer(list(texts.values()), add_special_tokens=not chat, verbose=False)["input_ids"]
            for i, ids in zip(texts, encoded, strict=True):
                prepared[i].ids = list(ids)
        for i in texts:
            req, prep = requests[i], prepared[i]
            space = (1 << 30) if max_context is None else max_context - len(prep.ids)
            budget = min(req.max_new_tokens, space)
            if space < 1:
                prep.error = f"prompt of {len(prep.ids)} tokens does not fit the model's context of {max_context}"
                continue
            if space < req.max_new_tokens:
                prep.notes = (
                    f"max_new_tokens reduced from {req.max_new_tokens} to {space}: the prompt has "
                    f"{len(prep.ids)} tokens and the context {max_context}",
                )
                log.warning("request %s: %s", req.key, prep.notes[0])
            stop = () if chat else tuple(s for s in req.stop if s)
            for j in range(req.n):
                seed = decode._row_seed(req.sampling.seed, req.first_sample + j, prep.ids)
                prep.rows.append(decode._Row(prep.ids, budget, req.sampling, seed, stop))
        return prepared

    def _render(self, req: GenerationRequest) -> str:
        """The text to tokenise: the prompt, or in chat mode the messages through the chat template."""
        if not self.options.chat:
            return req.prompt
        messages = [{"role": m.role, "content": m.content} for m in req.messages] or [
            {"role": "system", "content": SYSTEM_INSTRUCTION},
            {"role": "user", "content": req.prompt},
        ]
        return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))

    def provenance(self) -> Mapping[str, str]:
        if self._pool is not None:
            return self._pool.provenance()
        import torch

        prov = {
            "backend": "hf",
            "model": self.model_arg,
            "resolved_path": _resolved_path(self.model_ref, self.options),
            "model_class": type(self.model).__name__,
            "parameters": str(sum(p.numel() for p in self.model.parameters())),  # for `analyze scaling`
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "transformers": _transformers().__version__,
            "torch": torch.__version__,
            "batch_size": self.options.batch_size,
            "max_context": str(self.max_context),
            "mode": self.mode,
            "prefix_cache_mb": str(self.options.prefix_cache_mb if self._prefix is not None else 0),
            "sampling": "per-sequence seeded inverse-CDF draws (temperature, top-k, top-p); greedy at 0",
            "checkpoint_generation_config_ignored": json.dumps(self._checkpoint_generation, sort_keys=True),
        }
        if self.options.chat:
            prov["paper_comparable"] = "no: instruct (chat template) mode, not the paper's raw completion protocol"
        prov.update({k: str(v) for k in ("revision", "gguf_file") if (v := getattr(self.options, k))})
        prov.update(self._alias_provenance)
        if self._weights_digest is None:
            self._weights_digest = _digest_files(prov["resolved_path"])
        prov.update(self._weights_digest)
        return prov

    def run_stats(self) -> dict[str, int | float | None]:
        """Counts and throughput of this backend's work so far, for run.json."""
        if self._pool is not None:
            return self._pool.run_stats(self._generate_s)
        return {**self.stats, **throughput(self.stats["completion_tokens"], self._generate_s)}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            return
        self._prefix = None
        if getattr(self, "model", None) is not None:
            self.model = None
            decode._free_device_memory()


class BatchRunner:
    """The decode loop of one HFBackend: runs rows in batches as large as fit (halved on out-of-memory), pauses
    rows that finished, reuses cached prompt prefixes. State lives on the backend (`b`); this is its procedure."""

    def __init__(self, backend: HFBackend) -> None:
        self.b = backend

    def run_rows(self, rows: list[decode._Row]) -> None:
        """Generate every row, in batches of at most self.b._batch_rows.

        A batch may pause once half its rows are done (see _RowStopper); its unfinished rows then go first in
        the next batch, which is refilled with waiting rows, and their keys/values come back from the prefix
        cache. On out-of-memory the batch size halves and the same rows are tried again.
        """
        todo = list(rows)
        while todo:
            batch = self._next_batch(todo)
            try:
                self._run_batch(batch)
            except Exception as exc:
                if not decode._is_oom(exc):
                    raise
            else:
                paused = [r for r in batch if r.text is None and r.error is None]
                todo = paused + todo[len(batch) :]
                if self.b.progress is not None and len(batch) > len(paused):
                    self.b.progress(len(batch) - len(paused))
                continue
            # Out of memory: handled here, once the traceback (holding the batch's tensors) is gone.
            if self.b._prefix is not None:
                self.b._prefix.clear()  # kept keys/values are the first memory to give back
            decode._free_device_memory()
            self.b.stats["oom_retries"] += 1
            if len(batch) > 1:
                self.b._batch_rows = max(1, len(batch) // 2)
                log.warning(
                    "out of memory with %d sequences per batch; retrying with %d", len(batch), self.b._batch_rows
                )
                continue
            row = batch[0]
            row.error = (
                f"out of memory generating one sequence of {len(row.ids)} prompt tokens "
                f"+ {row.budget} new tokens on {self.b.device}"
            )
            todo = todo[1:]
            if self.b.progress is not None:
                self.b.progress(1)

    def _next_batch(self, todo: list[decode._Row]) -> list[decode._Row]:
        """The longest run of up to self.b._batch_rows rows from the front of `todo` that can share a call.

        A batch runs as many steps as its largest remaining budget, and a sequence that finished early is
        still fed (padding) until then: the longest input plus those steps must fit the context, or
        positions past the model's table would be looked up.
        """
        batch = [todo[0]]
        longest, steps = len(todo[0].inputs), todo[0].remaining
        for row in todo[1 : self.b._batch_rows]:
            longest, steps = max(longest, len(row.inputs)), max(steps, row.remaining)
            if self.b.max_context is not None and longest + steps > self.b.max_context:
                break
            batch.append(row)
        return batch

    def _prefill_alone(self, prefix: _PrefixCache, cache_kwarg: str, inputs: Sequence[list[int]]) -> None:
        """Compute each distinct input's keys/values on its own, unpadded, into the prefix cache.

        On a CPU compute is the bottleneck: a padded batch prefill spends it on padding (HumanEval prompts
        vary threefold in length) and on repeated prompts (n samples). Alone, each distinct prompt costs
        exactly its own tokens, continuing from any prefix already cached; generate then feeds one token
        per row. A forward pass costs at least one read of the weights, so short uncached parts (a new
        MTPB turn) are left to the batch. (On a GPU the batched prefill is nearly free, so it stays.)
        """
        import torch

        hf = _transformers()
        for tokens in inputs:
            entry, n = prefix.lookup(tokens)
            if len(tokens) - 1 - n < self.b.PREFILL_ALONE_FROM:
                continue  # cached (a repeated prompt, a paused row) or a short suffix: the batch does it
            past = [(k[None, :, :n], v[None, :, :n]) for k, v in entry.kv] if entry is not None and n else None
            cache = hf.DynamicCache(past, config=self.b.model.config)
            feed = torch.tensor([tokens[n:-1]], dtype=torch.long, device=self.b.device)
            with torch.inference_mode():
                self.b.model(input_ids=feed, use_cache=True, **{cache_kwarg: cache})
            # store() keeps the input plus all new tokens but the last: here the input is all but the last
            # prompt token, which generate will feed.
            if not prefix.store([tokens[:-1]], [[tokens[-1]]], [1], len(tokens) - 1, cache):
                return
            self.b.stats["reused_tokens"] -= len(tokens) - 1 - n  # computed here, not reused

    def _run_batch(self, batch: list[decode._Row]) -> None:
        """One generate call. Finished rows get their text; paused rows keep their tokens so far."""
        import torch

        hf = _transformers()
        inputs = [r.inputs for r in batch]
        ids, mask = (t.to(self.b.device) for t in decode.left_pad(inputs, self.b.pad_id))
        width = ids.shape[1]
        kwargs: dict[str, Any] = {}
        if self.b._prefix is not None and self.b._cache_kwarg is not None:
            if self.b.device.type == "cpu" and sum(map(len, inputs)) <= self.b._prefix.free_tokens():
                self._prefill_alone(self.b._prefix, self.b._cache_kwarg, inputs)
            cache, reused = self.b._prefix.assemble(inputs, width, self.b.model, self.b.device)
            if cache is not None:
                kwargs[self.b._cache_kwarg] = cache
                self.b.stats["reused_tokens"] += reused
        # Pausing costs about one step; it gains the waiting rows' places, and on a CPU fewer rows per step.
        pause_tokens = self.b._prefix.free_tokens() if self.b._prefix is not None else 0
        stopper = decode._RowStopper(self.b.tokenizer, width, batch, self.b.eos_ids, pause_tokens)
        processors = hf.LogitsProcessorList()
        if any(r.sampling.temperature > 0 for r in batch):
            processors.append(decode._RowSampler(width, batch, self.b.device))
        config = hf.GenerationConfig(
            max_new_tokens=max(r.remaining for r in batch),
            do_sample=False,  # _RowSampler samples; generate's argmax then takes its one allowed token
            num_beams=1,
            pad_token_id=self.b.pad_id,
            eos_token_id=list(self.b.eos_ids) or None,
            bos_token_id=self.b.model.generation_config.bos_token_id,
            return_dict_in_generate=self.b._prefix is not None,
            use_cache=True,
        )
        with torch.inference_mode():
            out = self.b.model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=config,
                logits_processor=processors,
                stopping_criteria=hf.StoppingCriteriaList([stopper]),
                **kwargs,
            )
        sequences = out.sequences if self.b._prefix is not None else out
        new = sequences[:, width:].tolist()
        counts = []  # tokens of this call that belong to each row
        for i, row in enumerate(batch):
            done = stopper.done_at[i]
            if done:
                count = done - len(row.generated)
            elif stopper.paused:
                count = len(new[i])
            else:  # a sequence the stopper never saw finish (defensive: generate ended on its own)
                count = decode._fallback_length(new[i], self.b.eos_ids, row.remaining)
            counts.append(count)
            row.generated = row.generated + new[i][:count]
            if done or not stopper.paused:
                row.text = decode._decode_continuation(self.b.tokenizer, row.ids, row.generated)
        if stopper.paused:
            self.b.stats["pauses"] += 1
        if self.b._prefix is not None:
            returned = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            if not self.b._prefix.store(inputs, new, counts, width, returned):
                log.warning("hf: this model's cache layout is not a plain key/value cache; prefix reuse is off")
                self.b._prefix = None


@dataclass(slots=True)
class _Prepared:
    """A request after validation and tokenisation, and its rows (their budget: the new tokens that fit)."""

    ids: list[int] = field(default_factory=list)
    error: str | None = None
    notes: tuple[str, ...] = ()
    rows: list[decode._Row] = field(default_factory=list)  # in sample order


def _request_error(req: GenerationRequest) -> str | None:
    s, n = req.sampling, req.n
    failures = [  # (failed, message), the first failed one reported
        (n < 1, f"n must be at least 1 (got {n})"),
        (req.max_new_tokens < 1, f"max_new_tokens must be at least 1 (got {req.max_new_tokens})"),
        (s.temperature < 0, f"temperature must be >= 0 (got {s.temperature})"),
        (
            s.temperature == 0 and n > 1,
            f"n={n} samples with temperature 0: greedy decoding gives {n} identical texts; use temperature > 0 or n=1",
        ),
        (not 0 < s.top_p <= 1, f"top_p must be in (0, 1] (got {s.top_p})"),
        (s.top_k < 0, f"top_k must be >= 0 (got {s.top_k})"),
    ]
    return next((message for failed, message in failures if failed), None)
