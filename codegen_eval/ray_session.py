"""Joining a Ray cluster and leaving it, shared by the Ray executor and the hf backend's Ray actors."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from codegen_eval.errors import UsageError


def connect(ray: Any, address: str, what: str, namespace: str | None = None) -> bool:
    """Join the cluster at `address` ("local": start one in this process) unless this process already has a Ray
    session; True if this call connected (then `leave` shuts the session down again). UsageError, naming `what`
    (the option the address came from), if the cluster cannot be reached."""
    if ray.is_initialized():
        return False
    local = address == "local"
    try:
        ray.init(
            address=None if local else address,
            namespace=namespace,
            log_to_driver=False,
            logging_level=logging.WARNING,
            include_dashboard=False if local else None,
            configure_logging=False,
        )
    except ConnectionError as e:
        raise UsageError(f"{what}: cannot reach the Ray cluster at {address}: {e}") from None
    return True


def leave(ray: Any, live: Sequence[Any], every: Sequence[Any], connected_here: bool) -> None:
    """Let the `live` actors close (30 s at most), kill `every` actor, and end the session if we began it."""
    closing = [actor.close.remote() for actor in live]
    if closing:
        ray.wait(closing, num_returns=len(closing), timeout=30)
    for actor in every:
        with suppress(Exception):  # already gone
            ray.kill(actor)
    if connected_here:
        ray.shutdown()
