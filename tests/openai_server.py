"""A real OpenAI-compatible server for tests (`transformers serve` on 127.0.0.1, serving the tiny CodeGen), and a
fault-injecting HTTP proxy that forwards to it. Loaded as a pytest plugin by tests/conftest.py.

Why `transformers serve`: it ships with transformers (extra `serving`: fastapi, uvicorn, openai), offers
/v1/completions, /v1/chat/completions and /v1/models, loads a local folder, and starts in a few seconds. Its
limits, which the backend copes with: it ignores `n` (one choice per reply), it samples only when the model's
generation config says do_sample (the served copy here says so; temperature 0 turns it off), its seed is global,
and it answers 500 when prompt + max_tokens exceed the model's context.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_served_model(tiny: Path, target: Path) -> Path:
    """A copy of the tiny model that samples when asked to and has a chat template (for chat mode)."""
    if not (target / "config.json").exists():
        shutil.copytree(tiny, target)
        gen_path = target / "generation_config.json"
        gen = json.loads(gen_path.read_text())
        gen["do_sample"] = True  # transformers serve never turns sampling on itself
        gen_path.write_text(json.dumps(gen, indent=1))
        (target / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return target


class TransformersServer:
    """`transformers serve MODEL` in a subprocess on 127.0.0.1:port; restartable on the same port."""

    def __init__(self, model: Path, log_dir: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.model = model
        self.port = port or free_port()
        self.log_dir = log_dir
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"serve-{self.port}-{self.starts}.log"

    def start(self, timeout: float = 90.0) -> TransformersServer:
        self.starts += 1
        cli = Path(sys.executable).parent / "transformers"
        cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "transformers.cli.transformers"]
        cmd += ["serve", str(self.model), "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"]
        cmd += [*self.extra, "--log-level", "warning"]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "PYTHONUNBUFFERED": "1"}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"transformers serve did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def completions_served(self) -> int:
        """POST /v1/completions answered by the current process (uvicorn's access log)."""
        return self.log_path.read_text(errors="replace").count('"POST /v1/completions HTTP/1.1" 200')

    def kill(self) -> None:
        """SIGKILL: the server dies mid-request, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


# ----------------------------------------------------------------------------------------------------------
# Fault-injecting proxy.


@dataclass(frozen=True, slots=True)
class Fault:
    """What the proxy does with one request instead of (or before) forwarding it."""

    status: int | None = None  # answer this status without forwarding
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b'{"error": {"message": "injected fault"}}'
    delay: float = 0.0  # wait this long, then forward (or answer `status`)
    drop: bool = False  # close the connection without answering


@dataclass(slots=True)
class Seen:
    """One request as the proxy saw it."""

    method: str
    path: str
    at: float
    headers: dict[str, str]
    body: dict[str, object] | None
    status: int | None = None


Rule = Callable[[int, "Seen"], Fault | None]


@dataclass(slots=True)
class _State:
    upstream: str
    rule: Rule | None = None
    seen: list[Seen] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    hold_first: int = 0  # hold the first requests until this many are in flight together ...
    hold_timeout: float = 5.0  # ... or this many seconds pass
    props: dict[str, object] | None = None  # answer GET /props with this, as llama.cpp's server does
    connections: list[socket.socket] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cond: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.cond = threading.Condition(self.lock)


class FaultProxy:
    """Forwards HTTP to `upstream` (http://host:port); `rule(index, request)` may inject a Fault per request.

    A forward to a dead upstream answers 502, as a real reverse proxy does. With `props` set it answers GET /props
    itself, as llama.cpp's server does (`{"total_slots": N, ...}`), so the backend sees a single-slot server.
    """

    def __init__(self, upstream: str) -> None:
        self.state = _State(upstream=upstream.rstrip("/"))
        state = self.state

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with state.lock:
                    state.connections.append(self.connection)

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                seen = Seen(self.command, self.path, time.monotonic(), dict(self.headers.items()), body)
                with state.cond:
                    index = len(state.seen)
                    state.seen.append(seen)
                    state.in_flight += 1
                    state.max_in_flight = max(state.max_in_flight, state.in_flight)
                    state.cond.notify_all()
                    if index < state.hold_first:
                        state.cond.wait_for(lambda: state.in_flight >= state.hold_first, state.hold_timeout)
                try:
                    fault = state.rule(index, seen) if state.rule else None
                    if fault is None and state.props is not None and (seen.method, seen.path) == ("GET", "/props"):
                        fault = Fault(status=200, body=json.dumps(state.props).encode())
                    self._respond(seen, raw, fault)
                finally:
                    with state.cond:
                        state.in_flight -= 1

            def _respond(self, seen: Seen, raw: bytes, fault: Fault | None) -> None:
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                if fault is not None and fault.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None and fault.status is not None:
                    status, headers, data = fault.status, list(fault.headers), fault.body
                else:
                    status, headers, data = self._forward(raw)
                seen.status = status
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                host, _, port = state.upstream.removeprefix("http://").partition(":")
                conn = http.client.HTTPConnection(host, int(port or 80), timeout=120)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    conn.request(self.command, self.path, body=raw or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    keep = [(k, v) for k, v in resp.getheaders() if k.lower() in ("content-type", "retry-after")]
                    return resp.status, keep, data
                except OSError as exc:
                    return 502, [("Content-Type", "application/json")], json.dumps({"error": str(exc)}).encode()
                finally:
                    conn.close()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="fault-proxy")
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def set_rule(self, rule: Rule | None) -> None:
        self.state.rule = rule

    def set_props(self, props: dict[str, object] | None) -> None:
        self.state.props = props

    @property
    def seen(self) -> list[Seen]:
        with self.state.lock:
            return list(self.state.seen)

    def posts(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST"]

    def close(self) -> None:
        """Stop listening and drop every open connection, as a process that died would."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
        with self.state.lock:
            for conn in self.state.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.state.connections.clear()


def faults(*items: Fault | None) -> Rule:
    """A rule that injects the given faults into the first POSTs, in order, and forwards the rest."""
    queue = list(items)
    lock = threading.Lock()

    def rule(index: int, seen: Seen) -> Fault | None:
        if seen.method != "POST":
            return None
        with lock:
            return queue.pop(0) if queue else None

    return rule


# ----------------------------------------------------------------------------------------------------------
# Fixtures.


@pytest.fixture(scope="session")
def served_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.models import build_tiny_codegen

    root = tmp_path_factory.mktemp("openai-model")
    return make_served_model(build_tiny_codegen(root / "tiny"), root / "served")


@pytest.fixture(scope="session")
def openai_server(served_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransformersServer]:
    """One `transformers serve` for the session (tests that kill a server start their own)."""
    server = TransformersServer(served_model, tmp_path_factory.mktemp("serve-logs")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fault_proxy(openai_server: TransformersServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(f"http://127.0.0.1:{openai_server.port}")
    try:
        yield proxy
    finally:
        proxy.close()
