"""Sandboxes: program in, result out. One file per sandbox."""

from codegen_eval.registry import Registry
from codegen_eval.sandbox.base import Sandbox

SANDBOXES: Registry[Sandbox] = Registry(
    "sandbox",
    {
        "process": "codegen_eval.sandbox.process:ProcessSandbox",
        "docker": "codegen_eval.sandbox.container:ContainerSandbox",
    },
)

__all__ = ["SANDBOXES", "Sandbox"]
