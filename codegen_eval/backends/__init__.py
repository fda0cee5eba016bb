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

__all__ = ["BACKENDS", "ModelBackend"]
