"""OpenAI-compatible server backend: /v1/completions (or /v1/chat/completions) over stdlib HTTP, concurrent,
with retries, backoff and several endpoints."""

from __future__ import annotations

import difflib
import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from codegen_eval.backends.base import BackendContext, parse_options
from codegen_eval.errors import BackendError, UsageError
from codegen_eval.records import Completion, GenerationRequest, SampleMode

log = logging.getLogger(__name__)

# Statuses worth another try: the server is overloaded, restarting or briefly broken.
_TRANSIENT = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 600.0
_CHECK_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class OpenAIOptions:
    """`-B key=value` options of the openai backend."""

    # Comma-separated base URLs (http://host:port/v1); requests are spread over them. Default: $OPENAI_BASE_URL.
    base_url: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # the environment variable holding the key (the key is never recorded)
    chat: bool = False  # /v1/chat/completions with the driver's messages (instruct models; not paper-comparable)
    concurrency: int = 16  # requests in flight
    timeout: float = 300.0  # seconds to wait for one response (a non-streamed reply arrives only when done)
    connect_timeout: float = 10.0
    retries: int = 6  # further attempts after a connection error, timeout, 429 or 5xx
    backoff: float = 0.5  # first wait in seconds; doubles per consecutive failure of an endpoint, with jitter
    max_backoff: float = 30.0
    check_model: bool = True  # ask GET /models at start that the model is served
    max_stop: int = 0  # send at most this many stop strings (OpenAI's API takes 4); 0: all


def _validate(o: OpenAIOptions) -> None:
    checks = [
        (o.concurrency >= 1, "concurrency must be at least 1"),
        (o.timeout > 0 and o.connect_timeout > 0, "timeouts must be positive"),
        (o.retries >= 0, "retries must be >= 0"),
        (o.backoff >= 0 and o.max_backoff >= o.backoff, "need 0 <= backoff <= max_backoff"),
        (o.max_stop >= 0, "max_stop must be >= 0"),
        (bool(o.api_key_env.strip()), "api_key_env must name an environment variable"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(f"backend 'openai': {message}")


class _Fatal(Exception):
    """A failure that no retry can fix and that concerns every request (bad key, missing endpoint, garbage)."""


class _Transient(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Rejected(Exception):
    """The server refused this one request (e.g. a prompt longer than its context): the item gets an error."""


@dataclass(slots=True)
class _Endpoint:
    """One server. Its own backoff state is shared by all requests, so a dead server is probed, not hammered."""

    base: str  # normalised base URL, no trailing slash
    scheme: str
    host: str
    port: int
    prefix: str  # URL path before /completions, e.g. /v1
    down_until: float = 0.0
    failures: int = 0  # consecutive failures (counted once per down period)
    idle: list[http.client.HTTPConnection] = field(default_factory=list)


def _parse_url(url: str) -> _Endpoint:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"backend 'openai': base URL {url!r} is not http(s)://HOST[:PORT]/PATH")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UsageError(f"backend 'openai': base URL {url!r} has a bad port") from None
    prefix = parts.path.rstrip("/")
    base = f"{parts.scheme}://{parts.netloc}{prefix}"
    return _Endpoint(base=base, scheme=parts.scheme, host=parts.hostname, port=port, prefix=prefix)


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"no response within {timeout:g} s"
    if isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError):
        return "the server closed the connection"
    if isinstance(exc, http.client.IncompleteRead):
        return "the response was cut off"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _server_detail(data: bytes) -> str:
    """The error message in a response body (OpenAI, FastAPI or plain text), on one short line."""
    text = data.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            text = err if isinstance(err, str) else json.dumps(err)
    text = " ".join(text.split())
    return text[:300] + ("…" if len(text) > 300 else "")


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number of seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


@dataclass(slots=True)
class _Job:
    """One HTTP request's worth of work: `n` texts for request `index`."""

    index: int
    n: int
    seed: int | None
    texts: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # this item failed
    fatal: str | None = None  # every item would fail: the run stops
    crash: Exception | None = None  # a bug: re-raised in the caller's thread with its traceback


class OpenAIBackend:
    """Any server speaking the OpenAI API (`--model openai:NAME --base-url http://HOST:PORT/v1`).

    - Completion mode (default) posts the raw prompt to /completions: what base code models and the CodeGen
      protocol need. Chat mode (`-B chat=true`) posts the driver's messages to /chat/completions.
    - The text recorded is what the server returned, untouched (servers differ on whether a stop string is kept;
      the benchmark's postprocess is authoritative).
    - A server that ignores `n` (it returns fewer choices) is detected, and the rest of the samples are asked for
      one per request, sample j with seed + j, so sampled texts still differ.
    - A request that keeps failing (connection errors, timeouts, 429, 5xx) becomes an error for its item after
      `retries` further attempts; once one has, later failing requests give up after one attempt until a request
      succeeds again, so a dead server ends a run quickly (resume retries the failed items). Failures that no
      retry can fix (401/403, a missing endpoint, a malformed reply) stop the run with one clear line.
    """

    name = "openai"
    # The OpenAI API returns the text without the stop string that ended it (vLLM and TGI too, by default).
    keeps_stop_strings = False
    progress: Callable[[int], None] | None = None  # told how many sequences each finished job held (runner's bar)

    def __init__(self, model: str, options: Mapping[str, str], context: BackendContext | None = None) -> None:
        self.options = parse_options(OpenAIOptions, options, "openai")
        _validate(self.options)
        urls = [u.strip() for u in self.options.base_url.split(",") if u.strip()]
        if not urls and os.environ.get("OPENAI_BASE_URL"):
            urls = [os.environ["OPENAI_BASE_URL"]]
        if not urls:
            raise UsageError("backend 'openai' needs a server: --base-url http://HOST:PORT/v1 (repeatable)")
        self.endpoints = [_parse_url(u) for u in dict.fromkeys(urls)]
        self.model = model
        self.mode: SampleMode = "chat" if self.options.chat else "completion"
        self.path = "/chat/completions" if self.options.chat else "/completions"
        self._api_key = os.environ.get(self.options.api_key_env) or None
        self._lock = threading.Lock()
        self._next = 0
        self._degraded = False  # a request ran out of retries and none has succeeded since
        self._split_n = False  # the server ignores n: ask one sample per request
        self._abort = threading.Event()
        self.stats = {"http_requests": 0, "retries": 0, "failed_items": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self.served: list[str] = []
        if self.options.check_model:
            self.served = self._check_model()
        elif not model:
            raise UsageError("backend 'openai' needs a model name: --model openai:NAME")

    # -- start-up check -------------------------------------------------------------------------------------

    def _check_model(self) -> list[str]:
        """GET /models on every endpoint: the model must be served by each one that answers."""
        reachable: list[_Endpoint] = []
        served: list[str] = []
        problems: list[str] = []
        for ep in self.endpoints:
            try:
                status, _, data = self._http(ep, "GET", "/models", None, timeout=_CHECK_TIMEOUT_S)
            except (OSError, http.client.HTTPException) as exc:
                problems.append(f"{ep.base}: {_describe(exc, _CHECK_TIMEOUT_S)}")
                ep.down_until = time.monotonic() + self.options.backoff
                continue
            if status in (401, 403):
                raise BackendError(
                    f"openai: {ep.base}/models answered {status} ({_server_detail(data)}); "
                    f"is ${self.options.api_key_env} set to a valid key?"
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
            if not self.model:
                raise UsageError(
                    f"backend 'openai' needs a model name: --model openai:NAME (served at {ep.base}: "
                    f"{', '.join(ids) or 'none'})"
                )
            if self.model not in ids:
                close = difflib.get_close_matches(self.model, ids, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                listed = ", ".join(ids[:10]) + (", …" if len(ids) > 10 else "")
                raise BackendError(
                    f"openai: model '{self.model}' is not served at {ep.base} ({hint}served: {listed or 'none'})"
                )
        if not reachable:
            raise BackendError(f"openai: cannot reach the server: {'; '.join(problems)}")
        for problem in problems:
            log.warning("openai: %s (requests go to the other servers until it answers)", problem)
        if not self.model:
            raise UsageError("backend 'openai' needs a model name: --model openai:NAME")
        return served

    # -- HTTP -----------------------------------------------------------------------------------------------

    def _connection(self, ep: _Endpoint, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if ep.idle:
                conn = ep.idle.pop()
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                return conn, False
        cls = http.client.HTTPSConnection if ep.scheme == "https" else http.client.HTTPConnection
        conn = cls(ep.host, ep.port, timeout=min(self.options.connect_timeout, timeout))
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True

    def _http(
        self, ep: _Endpoint, method: str, path: str, body: bytes | None, timeout: float
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One exchange on a kept-alive connection; a stale idle connection is replaced once, silently."""
        headers = {"Accept": "application/json", "User-Agent": "codegen-eval"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        for _ in range(2):
            conn, fresh = self._connection(ep, timeout)
            try:
                conn.request(method, ep.prefix + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if fresh:
                    raise
                # The server dropped an idle keep-alive connection (or restarted, and then every idle one is
                # dead): not a failure; try once more on a new connection.
                self._drop_idle(ep)
                continue
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            else:
                with self._lock:
                    ep.idle.append(conn)
            return resp.status, resp.headers, data
        raise http.client.RemoteDisconnected("the server closed the connection")

    def _drop_idle(self, ep: _Endpoint) -> None:
        with self._lock:
            idle, ep.idle = ep.idle, []
        for conn in idle:
            conn.close()

    # -- routing and retries --------------------------------------------------------------------------------

    def _pick(self) -> _Endpoint:
        """The next endpoint that is up (round robin); if none, wait for the first to come back."""
        while True:
            with self._lock:
                now = time.monotonic()
                count = len(self.endpoints)
                for step in range(count):
                    ep = self.endpoints[(self._next + step) % count]
                    if ep.down_until <= now:
                        self._next = (self._next + step + 1) % count
                        return ep
                soonest = min(self.endpoints, key=lambda e: e.down_until)
                if self._degraded:
                    return soonest  # fail fast: one plain attempt, no waiting
                wait = soonest.down_until - now
            if self._abort.wait(wait):
                raise _Fatal("aborted")

    def _jitter(self, exponent: int) -> float:
        step = min(self.options.max_backoff, self.options.backoff * 2 ** max(exponent, 0))
        return random.uniform(step / 2, step)  # clients that failed together do not come back together

    def _unreachable(self, ep: _Endpoint) -> None:
        """A connection error or timeout: the whole server is in doubt, so every request waits for it."""
        with self._lock:
            now = time.monotonic()
            if ep.down_until <= now:  # concurrent failures of one outage count once
                ep.failures += 1
            ep.down_until = max(ep.down_until, now + self._jitter(ep.failures - 1))

    def _hold(self, ep: _Endpoint, seconds: float) -> None:
        """The server said when to come back (Retry-After): no request goes there before."""
        with self._lock:
            ep.down_until = max(ep.down_until, time.monotonic() + seconds)

    def _succeeded(self, ep: _Endpoint) -> None:
        with self._lock:
            ep.failures = 0
            ep.down_until = 0.0
            self._degraded = False

    def _call(self, body: dict[str, Any], key: str) -> tuple[dict[str, Any], str]:
        """POST with retries; returns the parsed reply and the URL that gave it.
        Raises _Rejected (this item failed) or _Fatal (every item would)."""
        payload = json.dumps(body).encode()
        last = "no attempt"
        attempts = 1 if self._degraded else self.options.retries + 1
        attempt = 0
        while True:
            if self._abort.is_set():
                raise _Fatal("aborted")
            ep = self._pick()
            url = ep.base + self.path
            with self._lock:
                self.stats["http_requests"] += 1
                self.stats["retries"] += attempt > 0
            try:
                status, headers, data = self._http(ep, "POST", self.path, payload, self.options.timeout)
                if status == 200:
                    reply = _json_object(data, url)
                    self._succeeded(ep)
                    return reply, url
                detail = _server_detail(data)
                if status in _TRANSIENT or status >= 500:
                    raise _Transient(f"HTTP {status} from {url}: {detail}", _retry_after(headers.get("Retry-After")))
                if status in (401, 403):
                    raise _Fatal(f"{url} answered {status} ({detail}); is ${self.options.api_key_env} valid?")
                if status in (404, 405):
                    raise _Fatal(f"{url} answered {status} ({detail}); does the server offer {self.path}?")
                raise _Rejected(f"HTTP {status} from {url}: {detail}")
            except _Transient as exc:
                # An HTTP-level failure may concern this request only: it backs off on its own schedule.
                last, pause = str(exc), self._jitter(attempt)
                if exc.retry_after is not None:
                    self._hold(ep, exc.retry_after)
                    pause = 0.0  # the endpoint's hold is the wait
            except (OSError, http.client.HTTPException) as exc:
                last, pause = f"{url}: {_describe(exc, self.options.timeout)}", 0.0
                self._unreachable(ep)
                self._drop_idle(ep)
            attempt += 1
            if attempt >= attempts:
                with self._lock:
                    self._degraded = True
                raise _Rejected(f"{last} (after {attempt} attempt{'s' if attempt > 1 else ''})")
            if pause and self._abort.wait(pause):
                raise _Fatal("aborted")
            log.info("openai: %s: %s; retrying (%d/%d)", key, last, attempt, attempts - 1)

    # -- requests -------------------------------------------------------------------------------------------

    def _body(self, r: GenerationRequest, n: int, seed: int | None) -> dict[str, Any]:
        s = r.sampling
        body: dict[str, Any] = {"model": self.model, "max_tokens": r.max_new_tokens, "n": n}
        body["temperature"] = s.temperature
        body["top_p"] = s.top_p
        if s.top_k > 0:
            body["top_k"] = s.top_k  # not OpenAI's, but vLLM and others take it; strict servers reject it
        if seed is not None:
            body["seed"] = seed
        if self.options.chat:
            body["messages"] = [{"role": m.role, "content": m.content} for m in r.messages]
        else:
            body["prompt"] = r.prompt
            stop = list(r.stop)[: self.options.max_stop] if self.options.max_stop else list(r.stop)
            if stop:
                body["stop"] = stop
        return body

    def _run_job(self, r: GenerationRequest, job: _Job) -> None:
        want = job.n
        while len(job.texts) < want:
            got = len(job.texts)
            n = 1 if self._split_n else want - got
            seed = None if job.seed is None else (job.seed + got) & 0x7FFFFFFF
            reply, url = self._call(self._body(r, n, seed), r.key)
            texts = _texts(reply, self.options.chat, url)
            usage = reply.get("usage")
            if isinstance(usage, dict):
                job.prompt_tokens += _int(usage.get("prompt_tokens"))
                job.completion_tokens += _int(usage.get("completion_tokens"))
            if not texts:
                raise _Fatal(f"malformed response from {url}: no choices")
            if len(texts) < n and not self._split_n:
                self._split_n = True
                log.warning("openai: %s gave %d choice(s) for n=%d; asking one sample per request", url, len(texts), n)
            job.texts.extend(texts[:n])

    def _worker(self, requests: Sequence[GenerationRequest], jobs: list[_Job], cursor: list[int]) -> None:
        while not self._abort.is_set():
            with self._lock:
                if cursor[0] >= len(jobs):
                    return
                job = jobs[cursor[0]]
                cursor[0] += 1
            try:
                self._run_job(requests[job.index], job)
                if self.progress is not None:
                    self.progress(job.n)
            except _Rejected as exc:
                job.error = str(exc)
            except _Fatal as exc:
                job.fatal = str(exc)
                self._abort.set()
            except Exception as exc:  # a bug: stop the others and let the caller raise it
                job.crash = exc
                self._abort.set()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        jobs: list[_Job] = []
        for index, r in enumerate(requests):
            seed = r.sampling.seed
            if self._split_n and r.n > 1:
                jobs.extend(_Job(index, 1, None if seed is None else (seed + j) & 0x7FFFFFFF) for j in range(r.n))
            else:
                jobs.append(_Job(index, r.n, seed))
        self._abort.clear()
        cursor = [0]
        threads = [
            threading.Thread(target=self._worker, args=(requests, jobs, cursor), daemon=True, name=f"openai-{i}")
            for i in range(min(self.options.concurrency, len(jobs)))
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)  # short joins keep Ctrl-C responsive
        except BaseException:
            self._abort.set()
            raise
        crash = next((j.crash for j in jobs if j.crash is not None), None)
        if crash is not None:
            raise crash
        fatal = next((j.fatal for j in jobs if j.fatal and j.fatal != "aborted"), None)
        if fatal is not None:
            raise BackendError(f"openai: {fatal}")
        out: list[Completion] = []
        by_request: dict[int, list[_Job]] = {}
        for job in jobs:
            by_request.setdefault(job.index, []).append(job)
        for index in range(len(requests)):
            parts = by_request[index]
            error = next((j.error for j in parts if j.error), None)
            prompt_tokens = sum(j.prompt_tokens for j in parts)
            completion_tokens = sum(j.completion_tokens for j in parts)
            with self._lock:
                self.stats["prompt_tokens"] += prompt_tokens
                self.stats["completion_tokens"] += completion_tokens
                self.stats["failed_items"] += error is not None
            if error is not None:
                out.append(Completion(texts=(), error=error, completion_tokens=completion_tokens))
            else:
                texts = tuple(t for j in parts for t in j.texts)
                out.append(Completion(texts, None, prompt_tokens, completion_tokens))
        return out

    def provenance(self) -> Mapping[str, str]:
        out = {
            "backend": "openai",
            "model": self.model,
            "base_urls": ",".join(ep.base for ep in self.endpoints),
            "endpoint": self.path,
            "mode": self.mode,
            "api_key_env": self.options.api_key_env,  # the variable's name; its value is never recorded
            "served_models": ",".join(self.served),
        }
        if self.options.chat:
            out["paper_comparable"] = "false (chat mode: code extracted from an instruct model's reply)"
        return out

    def close(self) -> None:
        self._abort.set()
        for ep in self.endpoints:
            self._drop_idle(ep)
        if self.stats["http_requests"]:
            log.info("openai: %s", ", ".join(f"{k} {v}" for k, v in self.stats.items()))


def _json_object(data: bytes, url: str) -> dict[str, Any]:
    try:
        reply = json.loads(data)
    except ValueError:
        snippet = " ".join(data[:80].decode("utf-8", "replace").split())
        raise _Fatal(f"malformed response from {url}: not JSON ({snippet!r})") from None
    if not isinstance(reply, dict):
        raise _Fatal(f"malformed response from {url}: not a JSON object")
    return reply


def _model_ids(data: bytes, url: str) -> list[str]:
    try:
        reply = _json_object(data, url)
    except _Fatal as exc:
        raise BackendError(f"openai: {exc}") from None
    entries = reply.get("data")
    if not isinstance(entries, list):
        raise BackendError(f"openai: malformed response from {url}: no 'data' list")
    return [str(e["id"]) for e in entries if isinstance(e, dict) and "id" in e]


def _texts(reply: Mapping[str, Any], chat: bool, url: str) -> list[str]:
    choices = reply.get("choices")
    if not isinstance(choices, list):
        raise _Fatal(f"malformed response from {url}: no 'choices' list")
    indexed: list[tuple[int, str]] = []
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise _Fatal(f"malformed response from {url}: a choice is not an object")
        if chat:
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
            text = "" if text is None and isinstance(message, dict) else text  # a reply with no text content
        else:
            text = choice.get("text")
        if not isinstance(text, str):
            raise _Fatal(f"malformed response from {url}: a choice has no text")
        index = choice.get("index", position)
        indexed.append((index if isinstance(index, int) else position, text))
    return [text for _, text in sorted(indexed, key=lambda p: p[0])]


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
