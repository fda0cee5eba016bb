"""Hugging Face transformers backend: any causal LM, batched, left-padded, per-sequence stops and seeds."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from codegen_eval.backends.base import BackendContext, parse_options
from codegen_eval.backends.hf.cache import _cache_kwarg, _kv_bytes_per_token, _PrefixCache
from codegen_eval.backends.hf.decode import (
    _decode_continuation,
    _fallback_length,
    _free_device_memory,
    _is_oom,
    _Row,
    _row_seed,
    _RowSampler,
    _RowStopper,
    left_pad,
)
from codegen_eval.backends.hf.load import (
    SMOLLM2_ALIAS,
    HFOptions,
    _digest_files,
    _resolved_path,
    _transformers,
    _validate,
    check_model_ref,
    load_model,
    require_extra,
    resolve_smollm2,
)
from codegen_eval.backends.hf.prepare import _Prepared, prepare, render, room
from codegen_eval.errors import UsageError
from codegen_eval.records import Completion, GenerationRequest, SampleMode

if TYPE_CHECKING:
    from codegen_eval.backends.hf.ray_pool import RayPool

log = logging.getLogger(__name__)

_AUTO_BATCH_ROWS = {"cuda": 64, "cpu": 32}  # first try for batch_size=auto; halved on out-of-memory


class HFBackend:
    """Any transformers causal LM (`--model hf:PATH_OR_HUB_ID`).

    Guarantees:
    - Greedy (temperature 0) output of a prompt does not depend on which other prompts share its batch:
      left padding plus attention masks, checked by tests/backends/test_hf.py. (Up to floating-point
      rounding, which padding can change in the last bits; in fp32 the tests see identical text.)
    - Sampling draws one uniform number per sequence per step from a generator seeded by (request seed,
      sample index, prompt) and picks the token by inverse CDF over the temperature/top-k/top-p
      distribution. So the same seed and request give the same texts whatever the batch size or
      composition (same rounding caveat), and sample i is the same whether it was asked for in one call
      with n=10 or alone with first_sample=i. Without a seed, sampling is not reproducible. In fp32 a
      rounding difference between two batchings can, rarely, tip a near-tie (the tests check exact
      equality in fp64, `-B dtype=fp64`).
    - Batches: sequences of similar budget and length go together. Once half of a batch is done, the call
      pauses and the unfinished sequences resume in the next batch (refilled with waiting ones), their
      keys/values taken from the prefix cache, instead of computing finished sequences as padding.
    - Text is the decoded new tokens (special tokens skipped), up to and including the point where generation
      stopped (a stop string, EOS or the budget); stop strings are not cut off. In chat mode stop strings are
      ignored (they are written for raw completions) and the reply runs to the chat template's end token.
    """

    name = "hf"
    mode: SampleMode
    keeps_stop_strings = True  # the text runs up to and including the stop string that ended it
    progress: Callable[[int], None] | None = None  # told how many sequences each batch finished (runner's bar)
    PREFILL_ALONE_FROM = 64  # uncached prompt tokens from which a CPU prefill runs alone (_prefill_alone)

    def __init__(self, model: str, options: Mapping[str, str], context: BackendContext | None = None) -> None:
        self.options = parse_options(HFOptions, options, "hf")
        _validate(self.options)
        self.mode = "chat" if self.options.chat else "completion"
        self.model_arg = model
        self._alias_provenance: dict[str, str] = {}
        self._generate_s = 0.0  # wall time inside generate()
        self._pool: RayPool | None = None
        if self.options.ray_actors > 0:  # a thin driver: the actors load the model (ray_pool.py)
            if not model:
                raise UsageError("backend 'hf' needs a model: --model hf:PATH_OR_HUB_ID")
            if model != SMOLLM2_ALIAS:
                check_model_ref(model)  # the path must be the same on every node
            from codegen_eval.backends.hf.ray_pool import RayPool

            self._pool = RayPool(model, options, self.options.ray_actors, self.options.ray_address)
            return
        # The cheap checks first (no torch yet), each one line: the model names something, the extra is installed.
        if model == SMOLLM2_ALIAS:
            require_extra()  # converting the GGUF needs transformers
            path, self._alias_provenance = resolve_smollm2()
            self.model_ref = str(path)
        elif not model:
            raise UsageError("backend 'hf' needs a model: --model hf:PATH_OR_HUB_ID")
        else:
            self.model_ref = check_model_ref(model)
            require_extra()
        self._load()
        self._weights_digest: dict[str, str] | None = None
        self.stats = {
            "prompt_tokens": 0,
            # tokens whose keys/values came from the prefix cache instead of being computed
            # (shared prompt prefixes, and the sequences a paused batch resumes)
            "reused_tokens": 0,
            "completion_tokens": 0,
            "oom_retries": 0,
            "pauses": 0,
        }

    # -- loading --------------------------------------------------------------------------------------------

    def _load(self) -> None:
        opts = self.options
        loaded = load_model(self.model_ref, self.model_arg, opts)
        self.model: Any = loaded.model
        self.tokenizer: Any = loaded.tokenizer
        self.device, self.dtype = loaded.device, loaded.dtype
        self.eos_ids, self.pad_id, self.max_context = loaded.eos_ids, loaded.pad_id, loaded.max_context
        self._checkpoint_generation = loaded.checkpoint_generation
        self._transformers_version, self._torch_version = loaded.transformers_version, loaded.torch_version
        if opts.batch_size == "auto":
            self._batch_rows = _AUTO_BATCH_ROWS.get(self.device.type, 32)
        else:
            self._batch_rows = int(opts.batch_size)
        self._cache_kwarg = _cache_kwarg(self.model)
        self._prefix: _PrefixCache | None = None
        if opts.prefix_cache_mb > 0 and self._cache_kwarg:
            per_token = _kv_bytes_per_token(self.model, self.device, self.pad_id, self._cache_kwarg)
            if per_token:
                self._prefix = _PrefixCache(opts.prefix_cache_mb << 20, per_token)

    # -- public interface -----------------------------------------------------------------------------------

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
        rows: list[_Row] = []
        for index, (req, prep) in enumerate(zip(requests, prepared, strict=True)):
            if prep.error is not None:
                continue
            budget = min(req.max_new_tokens, self._room(len(prep.ids)))
            sampling = req.sampling
            for j in range(req.n):
                rows.append(
                    _Row(
                        req=index,
                        ids=prep.ids,
                        budget=budget,
                        temperature=sampling.temperature,
                        top_p=sampling.top_p,
                        top_k=sampling.top_k,
                        seed=_row_seed(sampling.seed, req.first_sample + j, prep.ids),
                        stop=() if self.options.chat else tuple(s for s in req.stop if s),
                    )
                )
        # Similar budgets and lengths together: less padding, and batches stop at about the same step.
        BatchRunner(self).run_rows(sorted(rows, key=lambda r: (r.budget, len(r.ids))))

        by_request: dict[int, list[_Row]] = {}
        for row in rows:  # `rows` keeps request order and sample order
            by_request.setdefault(row.req, []).append(row)
        out: list[Completion] = []
        for index, prep in enumerate(prepared):
            if prep.error is not None:
                out.append(Completion(texts=(), error=prep.error, prompt_tokens=len(prep.ids)))
                continue
            mine = by_request[index]
            failed = next((r.error for r in mine if r.error is not None), None)
            if failed is not None:
                out.append(Completion(texts=(), error=failed, prompt_tokens=len(prep.ids)))
                continue
            completion_tokens = sum(len(r.generated) for r in mine)
            self.stats["prompt_tokens"] += len(prep.ids)
            self.stats["completion_tokens"] += completion_tokens
            out.append(
                Completion(
                    texts=tuple(r.text or "" for r in mine),
                    prompt_tokens=len(prep.ids),
                    completion_tokens=completion_tokens,
                    notes=prep.notes,
                )
            )
        return out

    def provenance(self) -> Mapping[str, str]:
        if self._pool is not None:
            return self._pool.provenance()
        prov = {
            "backend": "hf",
            "model": self.model_arg,
            "resolved_path": _resolved_path(self.model_ref, self.options),
            "model_class": type(self.model).__name__,
            "parameters": str(sum(p.numel() for p in self.model.parameters())),  # for `analyze scaling`
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "transformers": self._transformers_version,
            "torch": self._torch_version,
            "batch_size": self.options.batch_size,
            "max_context": str(self.max_context),
            "mode": self.mode,
            "prefix_cache_mb": str(self.options.prefix_cache_mb if self._prefix is not None else 0),
            "sampling": "per-sequence seeded inverse-CDF draws (temperature, top-k, top-p); greedy at 0",
            "checkpoint_generation_config_ignored": json.dumps(self._checkpoint_generation, sort_keys=True),
        }
        if self.options.chat:
            prov["paper_comparable"] = "no: instruct (chat template) mode, not the paper's raw completion protocol"
        for key in ("revision", "gguf_file"):
            value = getattr(self.options, key)
            if value:
                prov[key] = str(value)
        prov.update(self._alias_provenance)
        if self._weights_digest is None:
            self._weights_digest = _digest_files(prov["resolved_path"])
        prov.update(self._weights_digest)
        return prov

    def run_stats(self) -> dict[str, int | float | None]:
        """Counts and throughput of this backend's work so far, for run.json."""
        seconds = self._generate_s
        if self._pool is not None:
            return self._pool.run_stats(seconds)
        rate = round(self.stats["completion_tokens"] / seconds, 2) if seconds > 0 else None
        return {**self.stats, "generate_s": round(seconds, 3), "completion_tokens_per_s": rate}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            return
        self._prefix = None
        if getattr(self, "model", None) is not None:
            del self.model
            self.model = None
            _free_device_memory()

    # -- preparation ----------------------------------------------------------------------------------------

    def _prepare(self, requests: Sequence[GenerationRequest]) -> list[_Prepared]:
        return prepare(requests, self.tokenizer, self.options.chat, self.max_context)

    def _render(self, req: GenerationRequest) -> str:
        return render(self.tokenizer, self.options.chat, req)

    def _room(self, prompt_tokens: int) -> int:
        return room(self.max_context, prompt_tokens)


class BatchRunner:
    """The decode loop of one HFBackend: runs rows in batches as large as fit (halved on out-of-memory), pauses
    rows that finished, reuses cached prompt prefixes. State lives on the backend (`b`); this is its procedure."""

    def __init__(self, backend: HFBackend) -> None:
        self.b = backend

    def run_rows(self, rows: list[_Row]) -> None:
        """Generate every row, in batches of at most self.b._batch_rows.

        A batch may pause once half its rows are done (see _RowStopper); its unfinished rows then go first in
        the next batch, which is refilled with waiting rows, and their keys/values come back from the prefix
        cache. On out-of-memory the batch size halves and the same rows are tried again.
        """
        todo = list(rows)
        while todo:
            batch = self._next_batch(todo)
            oom = False
            try:
                self._run_batch(batch)
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                oom = True  # handled below, once the traceback (holding the batch's tensors) is gone
            if not oom:
                paused = [r for r in batch if r.text is None and r.error is None]
                todo = paused + todo[len(batch) :]
                if self.b.progress is not None and len(batch) > len(paused):
                    self.b.progress(len(batch) - len(paused))
                continue
            if self.b._prefix is not None:
                self.b._prefix.clear()  # kept keys/values are the first memory to give back
            _free_device_memory()
            self.b.stats["oom_retries"] += 1
            if len(batch) == 1:
                row = batch[0]
                row.error = (
                    f"out of memory generating one sequence of {len(row.ids)} prompt tokens "
                    f"+ {row.budget} new tokens on {self.b.device}"
                )
                todo = todo[1:]
                if self.b.progress is not None:
                    self.b.progress(1)
                continue
            self.b._batch_rows = max(1, len(batch) // 2)
            log.warning("out of memory with %d sequences per batch; retrying with %d", len(batch), self.b._batch_rows)

    def _next_batch(self, todo: list[_Row]) -> list[_Row]:
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

    def _run_batch(self, batch: list[_Row]) -> None:
        """One generate call. Finished rows get their text; paused rows keep their tokens so far."""
        import torch

        hf = _transformers()
        inputs = [r.inputs for r in batch]
        ids, mask = left_pad(inputs, self.b.pad_id)
        width = ids.shape[1]
        ids, mask = ids.to(self.b.device), mask.to(self.b.device)
        steps = max(r.remaining for r in batch)

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
        stopper = _RowStopper(self.b.tokenizer, width, batch, self.b.eos_ids, pause_tokens)
        processors = hf.LogitsProcessorList()
        if any(r.temperature > 0 for r in batch):
            processors.append(_RowSampler(width, batch, self.b.device))
        config = hf.GenerationConfig(
            max_new_tokens=steps,
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
                count = _fallback_length(new[i], self.b.eos_ids, row.remaining)
            counts.append(count)
            row.generated = row.generated + new[i][:count]
            if done or not stopper.paused:
                row.text = _decode_continuation(self.b.tokenizer, row.ids, row.generated)
        if stopper.paused:
            self.b.stats["pauses"] += 1
        if self.b._prefix is not None:
            returned = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            if not self.b._prefix.store(inputs, new, counts, width, returned):
                log.warning("hf: this model's cache layout is not a plain key/value cache; prefix reuse is off")
                self.b._prefix = None
