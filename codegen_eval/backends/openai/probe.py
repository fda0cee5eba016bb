"""The openai backend's start-up checks: GET /models on every endpoint (the model name against what is served), and
how many requests each server works on at once (llama.cpp's /props `total_slots`)."""

from __future__ import annotations

import difflib
import http.client
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from codegen_eval.backends.openai.client import Client, _describe, _Endpoint, _Fatal, _json_object, _server_detail
from codegen_eval.errors import BackendError, UsageError

log = logging.getLogger(__name__)

_CHECK_TIMEOUT_S = 10.0


def check_model(client: Client, model: str) -> tuple[list[str], dict[str, Slots | None]]:
    """GET /models on every endpoint: the model must be served by each one that answers. Returns every model id
    served, and the slots of each endpoint that answered (by base URL): None where it does not tell them."""
    served: list[str] = []
    entries: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    for ep in client.endpoints:
        try:
            status, _, data = client.exchange(ep, "GET", ep.prefix + "/models", None, timeout=_CHECK_TIMEOUT_S)
        except (OSError, http.client.HTTPException) as exc:
            problems.append(f"{ep.base}: {_describe(exc, _CHECK_TIMEOUT_S)}")
            ep.down_until = time.monotonic() + client.options.backoff
            continue
        if status in (401, 403):
            raise BackendError(
                f"openai: {ep.base}/models answered {status} ({_server_detail(data)}); "
                f"is ${client.options.api_key_env} set to a valid key?"
            )
        if status == 404:
            if not ep.prefix.endswith("/v1"):
                raise BackendError(f"openai: {ep.base}/models not found (404); did you mean {ep.base}/v1?")
            log.warning("openai: %s has no /models endpoint; cannot check the model name", ep.base)
            entries[ep.base] = []
            continue
        if status != 200:
            raise BackendError(f"openai: {ep.base}/models answered {status}: {_server_detail(data)}")
        entries[ep.base] = _model_entries(data, f"{ep.base}/models")
        ids = [str(e["id"]) for e in entries[ep.base] if "id" in e]
        served.extend(i for i in ids if i not in served)
        if not model:
            raise UsageError(
                f"backend 'openai' needs a model name: --model openai:NAME (served at {ep.base}: "
                f"{', '.join(ids) or 'none'})"
            )
        if model not in ids:
            close = difflib.get_close_matches(model, ids, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            listed = ", ".join(ids[:10]) + (", …" if len(ids) > 10 else "")
            raise BackendError(f"openai: model '{model}' is not served at {ep.base} ({hint}served: {listed or 'none'})")
    if not entries:  # no endpoint answered
        raise BackendError(f"openai: cannot reach the server: {'; '.join(problems)}")
    for problem in problems:
        log.warning("openai: %s (requests go to the other servers until it answers)", problem)
    if not model:
        raise UsageError("backend 'openai' needs a model name: --model openai:NAME")
    return served, {ep.base: _slots(client, ep, entries[ep.base]) for ep in client.endpoints if ep.base in entries}


def _model_entries(data: bytes, url: str) -> list[dict[str, Any]]:
    try:
        reply = _json_object(data, url)
    except _Fatal as exc:
        raise BackendError(f"openai: {exc}") from None
    entries = reply.get("data")
    if not isinstance(entries, list):
        raise BackendError(f"openai: malformed response from {url}: no 'data' list")
    return [e for e in entries if isinstance(e, dict)]


# Server slots: how many requests a server decodes at once. llama.cpp's server has a fixed number of slots (one
# unless started with --parallel) and queues the rest, so requests beyond that only wait there, with their time
# counting against the backend's timeout, and interleaving them defeats its prompt cache. vLLM, TGI and
# `transformers serve` batch dynamically and report nothing: their concurrency is left as configured.


@dataclass(frozen=True, slots=True)
class Slots:
    """Requests one server works on at once, and how that was learnt."""

    count: int
    source: str  # e.g. "http://127.0.0.1:8080/props total_slots"


def _slots(client: Client, ep: _Endpoint, entries: list[dict[str, Any]]) -> Slots | None:
    root = ep.prefix.removesuffix("/v1")  # llama.cpp serves /props and /slots beside /v1, not under it
    origin = ep.base.removesuffix(ep.prefix)
    reply = _get_json(client, ep, f"{root}/props")
    if isinstance(reply, dict):
        count = reply.get("total_slots")
        if isinstance(count, int) and not isinstance(count, bool) and count >= 1:
            return Slots(count, f"{origin}{root}/props total_slots")
    reply = _get_json(client, ep, f"{root}/slots")  # older llama.cpp (or started with --slots): one entry a slot
    if isinstance(reply, list) and reply and all(isinstance(s, dict) and "id" in s for s in reply):
        return Slots(len(reply), f"{origin}{root}/slots")
    # llama-cpp-python's server lists its models as owned by "me", with a "permissions" list, and holds a lock
    # around each request: one at a time.
    if entries and all(e.get("owned_by") == "me" and "permissions" in e for e in entries):
        return Slots(1, f"{ep.base}/models looks like llama-cpp-python's server (one request at a time)")
    return None


def _get_json(client: Client, ep: _Endpoint, path: str) -> object:
    """A GET's JSON reply, or None for anything else (404, not JSON, no answer): these are hints, not checks."""
    try:
        status, _, data = client.exchange(ep, "GET", path, None, timeout=_CHECK_TIMEOUT_S)
        return json.loads(data) if status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None


def total_slots(slots: dict[str, Slots | None] | None) -> int | None:
    """Requests all servers together work on at once, when every one of them says."""
    if not slots or any(s is None for s in slots.values()):
        return None
    return sum(s.count for s in slots.values() if s is not None)


def fit_concurrency(client: Client, slots: dict[str, Slots | None] | None, explicit: bool) -> int:
    """The concurrency to use: the configured one, or the servers' slots when they are fewer and the user did not
    ask for more (either way, a warning says what queueing there costs)."""
    configured, available = client.options.concurrency, total_slots(slots)
    if available is None or available >= configured:
        return configured
    told = "; ".join(s.source for s in (slots or {}).values() if s is not None)
    at_once = f"{available} request{'s' if available > 1 else ''} at a time ({told})"
    if explicit:
        log.warning(
            f"openai: the server works on {at_once}, but -B concurrency={configured} sends {configured}: the rest "
            f"queue there, their wait counting against -B timeout={client.options.timeout:g}s, and interleaving them "
            "defeats its prompt cache"
        )
        return configured
    log.warning(
        f"openai: the server works on {at_once}; sending {available} at a time, not {configured} (more would only "
        "queue there, their wait counting against the timeout, and defeat its prompt cache; -B concurrency=N overrides)"
    )
    return available
