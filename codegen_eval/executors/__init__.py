"""Executors: where sandbox jobs run. `local` (this machine, the default) or `ray` (one sandbox host per node)."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

from codegen_eval.errors import UsageError
from codegen_eval.executors.base import Executor
from codegen_eval.sandbox.base import SandboxSettings

KINDS = ("local", "ray")
RAY_MISSING = "--executor ray needs Ray: pip install 'codegen-eval[ray]'"


def check(options: Mapping[str, str]) -> None:
    """Refuse a bad executor config before any work (unknown kind or option, Ray not installed); imports no Ray."""
    kind = options.get("kind", "local")
    if kind not in KINDS:
        raise UsageError(f"unknown executor '{kind}' (known: {', '.join(KINDS)})")
    if kind == "local":
        extra = sorted(set(options) - {"kind"})
        if extra:
            raise UsageError(f"the local executor takes no options (got {', '.join(extra)})")
        return
    from codegen_eval.executors.ray import RayOptions  # the module imports Ray only when an executor opens

    RayOptions.parse(options)
    if importlib.util.find_spec("ray") is None:
        raise UsageError(RAY_MISSING)


def open_executor(options: Mapping[str, str], sandbox: str, settings: SandboxSettings) -> Executor:
    """The executor `options` names (a context manager), running `sandbox` built from `settings`."""
    check(options)
    if options.get("kind", "local") == "local":
        from codegen_eval.executors.local import LocalExecutor

        return LocalExecutor(sandbox, settings)
    from codegen_eval.executors.ray import RayExecutor, RayOptions

    return RayExecutor(RayOptions.parse(options), sandbox, settings)


__all__ = ["KINDS", "RAY_MISSING", "Executor", "check", "open_executor"]
