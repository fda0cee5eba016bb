"""The openai backend's start-up check: GET /models on every endpoint, the model name against what is served."""

from __future__ import annotations

import difflib
import http.client
import logging
import time

from codegen_eval.backends.openai.client import Client, _describe, _Endpoint, _Fatal, _json_object, _server_detail
from codegen_eval.errors import BackendError, UsageError

log = logging.getLogger(__name__)

_CHECK_TIMEOUT_S = 10.0


def check_model(client: Client, model: str) -> list[str]:
    """GET /models on every endpoint: the model must be served by each one that answers. Returns every id served."""
    reachable: list[_Endpoint] = []
    served: list[str] = []
    problems: list[str] = []
    for ep in client.endpoints:
        try:
            status, _, data = client.exchange(ep, "GET", "/models", None, timeout=_CHECK_TIMEOUT_S)
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
            reachable.append(ep)
            continue
        if status != 200:
            raise BackendError(f"openai: {ep.base}/models answered {status}: {_server_detail(data)}")
        ids = _model_ids(data, f"{ep.base}/models")
        served.extend(i for i in ids if i not in served)
        reachable.append(ep)
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
    if not reachable:
        raise BackendError(f"openai: cannot reach the server: {'; '.join(problems)}")
    for problem in problems:
        log.warning("openai: %s (requests go to the other servers until it answers)", problem)
    if not model:
        raise UsageError("backend 'openai' needs a model name: --model openai:NAME")
    return served


def _model_ids(data: bytes, url: str) -> list[str]:
    try:
        reply = _json_object(data, url)
    except _Fatal as exc:
        raise BackendError(f"openai: {exc}") from None
    entries = reply.get("data")
    if not isinstance(entries, list):
        raise BackendError(f"openai: malformed response from {url}: no 'data' list")
    return [str(e["id"]) for e in entries if isinstance(e, dict) and "id" in e]
