"""Model backends: text in, text out. One file per backend."""

from codegen_eval.backends.base import ModelBackend
from codegen_eval.registry import Registry

BACKENDS: Registry[ModelBackend] = Registry(
    "backend",
    {
        "reference": "codegen_eval.backends.reference:ReferenceBackend",
        "replay": "codegen_eval.backends.replay:ReplayBackend",
    },
)

__all__ = ["ALIASES", "BACKENDS", "ModelBackend", "resolve_model"]

# Model names that stand for a backend and its argument.
ALIASES: dict[str, tuple[str, str]] = {}


def resolve_model(spec: str) -> tuple[str, str]:
    """ "reference" -> ("reference", ""); "hf:path" -> ("hf", "path"); aliases -> their backend."""
    if spec in ALIASES:
        return ALIASES[spec]
    name, _, arg = spec.partition(":")
    BACKENDS.target(name)  # raises with "did you mean" for an unknown backend
    return name, arg
