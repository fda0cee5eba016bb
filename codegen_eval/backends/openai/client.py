"""HTTP for the openai backend: its `-B` options, endpoints, kept-alive connections, round-robin routing, retries
with backoff, the failure classes and JSON replies."""

from __future__ import annotations

import http.client
import json
import logging
import random
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from codegen_eval.errors import UsageError

log = logging.getLogger(__name__)


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

    def __post_init__(self) -> None:
        checks = [
            (self.concurrency >= 1, "concurrency must be at least 1"),
            (self.timeout > 0 and self.connect_timeout > 0, "timeouts must be positive"),
            (self.retries >= 0, "retries must be >= 0"),
            (self.backoff >= 0 and self.max_backoff >= self.backoff, "need 0 <= backoff <= max_backoff"),
            (self.max_stop >= 0, "max_stop must be >= 0"),
            (bool(self.api_key_env.strip()), "api_key_env must name an environment variable"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(f"backend 'openai': {message}")


# Statuses worth another try: the server is overloaded, restarting or briefly broken.
_TRANSIENT = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 600.0


class _Fatal(Exception):
    """A failure that no retry can fix and that concerns every request (bad key, missing endpoint, garbage)."""


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
    return _Endpoint(f"{parts.scheme}://{parts.netloc}{prefix}", parts.scheme, parts.hostname, port, prefix)


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


def _json_object(data: bytes, url: str) -> dict[str, Any]:
    try:
        reply = json.loads(data)
    except ValueError:
        snippet = " ".join(data[:80].decode("utf-8", "replace").split())
        raise _Fatal(f"malformed response from {url}: not JSON ({snippet!r})") from None
    if not isinstance(reply, dict):
        raise _Fatal(f"malformed response from {url}: not a JSON object")
    return reply


class Client:
    """The servers of one backend and the HTTP to them; thread-safe (the backend's workers share it).

    `abort` stops every waiting or retrying call; `degraded` is set once a request ran out of retries and cleared by
    the next success (while set, a failing request gives up after one attempt); `stats` counts requests and retries.
    """

    def __init__(self, endpoints: list[_Endpoint], path: str, options: OpenAIOptions, api_key: str | None) -> None:
        self.endpoints = endpoints
        self.path = path  # /completions or /chat/completions, after each endpoint's prefix
        self.options = options
        self._api_key = api_key
        self.lock = threading.Lock()
        self._next = 0
        self.degraded = False  # a request ran out of retries and none has succeeded since
        self.abort = threading.Event()
        self.stats = {"http_requests": 0, "retries": 0}

    def _connection(self, ep: _Endpoint, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        with self.lock:
            conn = ep.idle.pop() if ep.idle else None
        fresh = conn is None
        if conn is None:
            cls = http.client.HTTPSConnection if ep.scheme == "https" else http.client.HTTPConnection
            conn = cls(ep.host, ep.port, timeout=min(self.options.connect_timeout, timeout))
            conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, fresh

    def exchange(
        self, ep: _Endpoint, method: str, target: str, body: bytes | None, timeout: float
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
                conn.request(method, target, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if fresh:
                    raise
                # The server dropped an idle keep-alive connection (or restarted, and then every idle one is
                # dead): not a failure; try once more on a new connection.
                self.drop_idle(ep)
                continue
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            else:
                with self.lock:
                    ep.idle.append(conn)
            return resp.status, resp.headers, data
        raise http.client.RemoteDisconnected("the server closed the connection")

    def drop_idle(self, ep: _Endpoint) -> None:
        with self.lock:
            idle, ep.idle = ep.idle, []
        for conn in idle:
            conn.close()

    def close(self) -> None:
        self.abort.set()
        for ep in self.endpoints:
            self.drop_idle(ep)

    def _pick(self) -> _Endpoint:
        """The next endpoint that is up (round robin); if none, wait for the first to come back."""
        while True:
            with self.lock:
                now = time.monotonic()
                count = len(self.endpoints)
                for step in range(count):
                    ep = self.endpoints[(self._next + step) % count]
                    if ep.down_until <= now:
                        self._next = (self._next + step + 1) % count
                        return ep
                soonest = min(self.endpoints, key=lambda e: e.down_until)
                if self.degraded:
                    return soonest  # fail fast: one plain attempt, no waiting
                wait = soonest.down_until - now
            if self.abort.wait(wait):
                raise _Fatal("aborted")

    def _jitter(self, exponent: int) -> float:
        step = min(self.options.max_backoff, self.options.backoff * 2 ** max(exponent, 0))
        return random.uniform(step / 2, step)  # clients that failed together do not come back together

    def _unreachable(self, ep: _Endpoint) -> None:
        """A connection error or timeout: the whole server is in doubt, so every request waits for it."""
        with self.lock:
            now = time.monotonic()
            if ep.down_until <= now:  # concurrent failures of one outage count once
                ep.failures += 1
            ep.down_until = max(ep.down_until, now + self._jitter(ep.failures - 1))

    def call(self, body: dict[str, Any], key: str) -> tuple[dict[str, Any], str, float]:
        """POST with retries; returns the parsed reply, the URL that gave it and the seconds that exchange took
        (the successful attempt's, from sending to the last byte of the reply).
        Raises _Rejected (this item failed) or _Fatal (every item would)."""
        payload = json.dumps(body).encode()
        attempts = 1 if self.degraded else self.options.retries + 1
        attempt = 0
        while True:
            if self.abort.is_set():
                raise _Fatal("aborted")
            ep = self._pick()
            url = ep.base + self.path
            with self.lock:
                self.stats["http_requests"] += 1
                self.stats["retries"] += attempt > 0
            started = time.monotonic()
            try:
                status, headers, data = self.exchange(ep, "POST", ep.prefix + self.path, payload, self.options.timeout)
            except (OSError, http.client.HTTPException) as exc:
                last, pause = f"{url}: {_describe(exc, self.options.timeout)}", 0.0
                self._unreachable(ep)
                self.drop_idle(ep)
            else:
                if status == 200:
                    seconds = time.monotonic() - started
                    reply = _json_object(data, url)
                    with self.lock:
                        ep.failures, ep.down_until, self.degraded = 0, 0.0, False
                    return reply, url, seconds
                detail = _server_detail(data)
                last = f"HTTP {status} from {url}: {detail}"
                if status in (401, 403):
                    raise _Fatal(f"{url} answered {status} ({detail}); is ${self.options.api_key_env} valid?")
                if status in (404, 405):
                    raise _Fatal(f"{url} answered {status} ({detail}); does the server offer {self.path}?")
                if status not in _TRANSIENT and status < 500:
                    raise _Rejected(last)
                # An HTTP-level failure may concern this request only: it backs off on its own schedule.
                pause = self._jitter(attempt)
                retry_after = _retry_after(headers.get("Retry-After"))
                if retry_after is not None:  # the server said when to come back: no request goes there before
                    with self.lock:
                        ep.down_until = max(ep.down_until, time.monotonic() + retry_after)
                    pause = 0.0  # the endpoint's hold is the wait
            attempt += 1
            if attempt >= attempts:
                with self.lock:
                    self.degraded = True
                raise _Rejected(f"{last} (after {attempt} attempt{'s' if attempt > 1 else ''})")
            if pause and self.abort.wait(pause):
                raise _Fatal("aborted")
            log.info("openai: %s: %s; retrying (%d/%d)", key, last, attempt, attempts - 1)
