"""HTTP for the openai backend: endpoints, kept-alive connections, round-robin routing, retries with backoff, the
failure classes and JSON replies."""

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

from codegen_eval.backends.openai.options import OpenAIOptions
from codegen_eval.errors import UsageError

log = logging.getLogger(__name__)

# Statuses worth another try: the server is overloaded, restarting or briefly broken.
_TRANSIENT = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 600.0


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

    # -- connections ----------------------------------------------------------------------------------------

    def _connection(self, ep: _Endpoint, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        with self.lock:
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

    def exchange(
        self, ep: _Endpoint, method: str, path: str, body: bytes | None, timeout: float, under_prefix: bool = True
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One exchange on a kept-alive connection; a stale idle connection is replaced once, silently.
        `path` follows the endpoint's prefix (/v1), or with under_prefix=False stands on its own."""
        target = ep.prefix + path if under_prefix else path
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

    # -- routing and retries --------------------------------------------------------------------------------

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

    def _hold(self, ep: _Endpoint, seconds: float) -> None:
        """The server said when to come back (Retry-After): no request goes there before."""
        with self.lock:
            ep.down_until = max(ep.down_until, time.monotonic() + seconds)

    def _succeeded(self, ep: _Endpoint) -> None:
        with self.lock:
            ep.failures = 0
            ep.down_until = 0.0
            self.degraded = False

    def call(self, body: dict[str, Any], key: str) -> tuple[dict[str, Any], str, float]:
        """POST with retries; returns the parsed reply, the URL that gave it and the seconds that exchange took
        (the successful attempt's, from sending to the last byte of the reply).
        Raises _Rejected (this item failed) or _Fatal (every item would)."""
        payload = json.dumps(body).encode()
        last = "no attempt"
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
            try:
                started = time.monotonic()
                status, headers, data = self.exchange(ep, "POST", self.path, payload, self.options.timeout)
                if status == 200:
                    seconds = time.monotonic() - started
                    reply = _json_object(data, url)
                    self._succeeded(ep)
                    return reply, url, seconds
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
                self.drop_idle(ep)
            attempt += 1
            if attempt >= attempts:
                with self.lock:
                    self.degraded = True
                raise _Rejected(f"{last} (after {attempt} attempt{'s' if attempt > 1 else ''})")
            if pause and self.abort.wait(pause):
                raise _Fatal("aborted")
            log.info("openai: %s: %s; retrying (%d/%d)", key, last, attempt, attempts - 1)
