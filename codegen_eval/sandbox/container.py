"""Container sandbox (`--sandbox docker`): programs run in long-lived locked-down containers (docker SDK)."""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Self

from codegen_eval.errors import SandboxError
from codegen_eval.records import ExecutionJob, ExecutionResult, ExitKind
from codegen_eval.sandbox import core, seccomp
from codegen_eval.sandbox.base import STDERR_TAIL_BYTES, ClosedOnExit, SandboxSettings, decode_output, make_result
from codegen_eval.sandbox.pool import Pending, SlotPool

log = logging.getLogger(__name__)

LABEL = "codegen-eval"  # every container this sandbox creates carries LABEL=1
RUN_LABEL = "codegen-eval.run"
OWNER_LABEL = "codegen-eval.owner"  # "hostname:pid" of the harness process, so prune() can spare live runs
DEFAULT_IMAGE = "codegen-eval-sandbox:1"
PODMAN_SOCKET = "/run/podman/podman.sock"
USER = "65534:65534"  # nobody:nogroup
WORKDIR = "/work"
# Writable places inside the container (everything else is the read-only image); wiped after every program.
_WIPE = ("/work", "/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue")
# How long past a job's own timeout the host waits for the supervisor's answer before giving up on it.
_GRACE_S = 20.0
_SHM_MB = 64
_START_TIMEOUT_S = 60.0
# One thread per program would oversubscribe the cores: parallelism comes from the workers.
_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def SAFE_ULIMITS() -> list[Any]:
    """Container ulimits every engine can set.

    Both must be given: podman fills any unnamed one with its own default (nofile 1048576), which may exceed
    what it may set, and then the container fails to start. RLIMIT_NPROC counts every process of uid 65534 on
    the host, so the real process limit is the pids cgroup; the programs' rlimits come from the supervisor.
    """
    import docker

    return [
        docker.types.Ulimit(name="nofile", soft=1024, hard=1024),
        docker.types.Ulimit(name="nproc", soft=4096, hard=4096),
    ]


def connect() -> tuple[Any, str]:
    """A docker SDK client and a description of where it points.

    DOCKER_HOST wins (remote engines work); else the podman socket that scripts/setup-container-engine.sh
    starts; else the SDK's default (/var/run/docker.sock).
    """
    try:
        import docker
        import requests
    except ImportError as exc:
        raise SandboxError("the docker sandbox needs the docker SDK: pip install 'codegen-eval[docker]'") from exc
    host = os.environ.get("DOCKER_HOST", "")
    try:
        if host:
            where = f"DOCKER_HOST={host}"
            client = docker.from_env()
        elif os.path.exists(PODMAN_SOCKET):
            where = f"unix://{PODMAN_SOCKET}"
            client = docker.DockerClient(base_url=where)
        else:
            where = "the default docker socket"
            client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.RequestException, OSError) as exc:
        raise SandboxError(
            f"no container engine answers at {where} ({exc}); run scripts/setup-container-engine.sh or set DOCKER_HOST"
        ) from exc
    log.info("container sandbox: engine at %s", where)
    return client, where


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune(*, everything: bool = False, run_id: str = "", client: Any = None) -> list[str]:
    """Remove containers left behind by crashed runs (whose harness process is gone). Returns their names.

    With `everything`, remove every labelled container, including those of runs still going; `run_id` limits
    either to one run.
    """
    if client is None:
        client, _ = connect()
    removed = []
    label = f"{RUN_LABEL}={run_id}" if run_id else f"{LABEL}=1"
    for container in client.containers.list(all=True, filters={"label": label}):
        host, _, pid = container.labels.get(OWNER_LABEL, "").rpartition(":")
        alive = host == socket.gethostname() and pid.isdigit() and _pid_alive(int(pid))
        if everything or not alive:
            with contextlib.suppress(Exception):  # already gone: someone else pruned it
                container.remove(force=True, v=True)
                removed.append(container.name)
    return removed


@dataclass
class _Worker:
    """One running container whose PID 1 is the supervisor, talked to over its attached stdin/stdout. The
    engine multiplexes the attach stream: 8-byte header (stream, 0, 0, 0, length), payload."""

    container_id: str
    name: str
    response: Any  # the HTTP response that owns the attach socket; kept so the socket stays open
    sock: socket.socket
    hello: dict[str, Any] = field(default_factory=dict)
    diagnostics: bytearray = field(default_factory=bytearray)  # the supervisor's own stderr, for error messages
    _buffer: bytearray = field(default_factory=bytearray)
    _out: bytearray = field(default_factory=bytearray)

    def _fill(self, n: int) -> bool:
        while len(self._buffer) < n:
            data = self.sock.recv(1 << 20)
            if not data:
                return False
            self._buffer.extend(data)
        return True

    def read(self, n: int) -> bytes | None:
        """The next n bytes of the supervisor's stdout, or None at end of stream. Raises TimeoutError."""
        while len(self._out) < n:
            if not self._fill(8):
                return None
            stream, length = struct.unpack(">BxxxL", self._buffer[:8])
            if not self._fill(8 + length):
                return None
            payload = self._buffer[8 : 8 + length]
            del self._buffer[: 8 + length]
            if stream == 2:
                self.diagnostics.extend(payload)
                del self.diagnostics[:-4096]
            else:
                self._out.extend(payload)
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def request(self, job: bytes, wait_s: float) -> tuple[tuple[Any, ...], bytes] | None:
        """Send one job and wait for its result (the header's fields, the body): None if the container died;
        TimeoutError if it is silent."""
        self.sock.settimeout(wait_s)
        self.sock.sendall(job)
        head = self.read(core.RESULT.size)
        if head is None:
            return None
        fields = core.RESULT.unpack(head)
        body = self.read(sum(fields[6:9]))  # stdout head, stdout tail, stderr tail
        return None if body is None else (fields, body)

    def close_socket(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(Exception):
            self.response.close()


class _Fleet:
    """This run's containers on the engine: started, named, labelled, removed (in the background when it can)."""

    def __init__(self, box: ContainerSandbox, client: Any) -> None:
        self.box = box
        self.client = client
        self.run_id = uuid.uuid4().hex[:12]
        self._live: dict[str, str] = {}  # container id -> name, everything not yet removed
        self._lock = threading.Lock()
        self._reaper = ThreadPoolExecutor(max_workers=2, thread_name_prefix="codegen-eval-reaper")
        self._counter = 0
        self.closed = False

    def start(self, index: int) -> _Worker:
        import docker

        box, api = self.box, self.client.api
        with self._lock:
            if self.closed:
                raise SandboxError("the container sandbox is closed")
            self._counter += 1
            name = f"codegen-eval-{self.run_id}-{index}-{self._counter}"
        tmpfs = f"rw,nosuid,nodev,size={box.tmpfs_mb}m,mode=1777"
        host_config = api.create_host_config(
            network_mode="none",
            read_only=True,
            tmpfs={WORKDIR: tmpfs, "/tmp": tmpfs, "/var/tmp": tmpfs},
            mem_limit=f"{box.container_memory_mb}m",
            memswap_limit=f"{box.container_memory_mb}m",
            pids_limit=box.pids,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            shm_size=f"{_SHM_MB}m",
            ulimits=SAFE_ULIMITS(),
        )
        try:
            created = api.create_container(
                box.image,
                command=[box.python, "-c", core.source("container_supervisor"), box.supervisor_config],
                user=USER,
                detach=False,  # with stdin_open: StdinOnce, so the supervisor sees end of file if we vanish
                stdin_open=True,
                tty=False,
                # PYTHONHASHSEED: programs are forks of the supervisor and inherit its hash seed; 0 makes string
                # hashing (set order) the same in every run, as in the process sandbox.
                environment={"HOME": WORKDIR, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"},
                working_dir=WORKDIR,
                labels={LABEL: "1", RUN_LABEL: self.run_id, OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}"},
                name=name,
                network_disabled=True,
                host_config=host_config,
            )
            container_id = str(created["Id"])
            with self._lock:
                self._live[container_id] = name
            response = api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            sock: socket.socket = getattr(response, "_sock", response)
            api.start(container_id)
            worker = _Worker(container_id, name, response, sock)
            sock.settimeout(_START_TIMEOUT_S)
            size = worker.read(core.READY_LEN.size)
            ready = None if size is None else worker.read(core.READY_LEN.unpack(size)[0])
        except (docker.errors.DockerException, OSError) as exc:
            raise SandboxError(f"cannot start container {name} from {box.image}: {exc}") from exc
        if ready is None:
            worker.close_socket()
            raise SandboxError(
                f"container {name} exited before its supervisor started: "
                f"{worker.diagnostics.decode('utf-8', 'replace').strip() or 'no output'}"
            )
        worker.hello = hello = json.loads(ready)
        if not hello.get("protected"):
            log.warning("container %s: supervisor could not make itself non-dumpable", name)
        if hello.get("seccomp_off", "the supervisor did not say"):
            log.warning("container %s: the syscall filter is OFF: %s", name, hello.get("seccomp_off"))
        return worker

    def start_later(self, index: int) -> Future[_Worker] | None:
        """Start a replacement in the background (a container takes a few hundred milliseconds); None if closing."""
        try:
            return self._reaper.submit(self.start, index)
        except RuntimeError:
            return None

    def state(self, worker: _Worker) -> dict[str, Any]:
        """The engine's State of a container ({} once it is gone)."""
        with contextlib.suppress(Exception):
            return dict(self.client.api.inspect_container(worker.container_id)["State"])
        return {}

    def _remove(self, container_id: str) -> None:
        import docker

        for attempt in range(3):
            try:
                self.client.api.remove_container(container_id, force=True, v=True)
                break
            except docker.errors.NotFound:
                break
            except Exception as exc:
                # podman refuses to remove a container that stops by itself meanwhile ("state improper");
                # the next attempt finds it stopped. Past that, prune() cleans up later.
                if attempt == 2:
                    log.warning("could not remove container %s: %s", container_id[:12], exc)
                time.sleep(0.2)
        with self._lock:
            self._live.pop(container_id, None)

    def _retire(self, worker: _Worker) -> None:
        # Remove first, then close: closing the attach socket ends the supervisor (end of stdin), and a
        # container that stops by itself during a forced removal makes podman fail the removal.
        self._remove(worker.container_id)
        worker.close_socket()

    def discard(self, worker: _Worker, wait: bool) -> None:
        if wait or self.closed:
            self._retire(worker)
        else:
            try:
                self._reaper.submit(self._retire, worker)
            except RuntimeError:  # reaper already shut down: closing
                self._retire(worker)

    def close(self) -> None:
        """Refuse new containers, wait for the background work, remove whatever is left."""
        with self._lock:
            self.closed = True
        self._reaper.shutdown(wait=True)
        with self._lock:
            leftovers = list(self._live)
        if leftovers:
            with ThreadPoolExecutor(max_workers=min(len(leftovers), 8)) as pool:
                list(pool.map(self._remove, leftovers))


class ContainerSandbox(ClosedOnExit):
    """Runs each program in one of `concurrency` long-lived containers (network off, read-only root, non-root,
    no capabilities, memory and pids limits), through a supervisor that is the container's PID 1."""

    name = "docker"

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.image = settings.image or os.environ.get("CODEGEN_EVAL_IMAGE") or DEFAULT_IMAGE
        self.python = settings.python or "python3"
        self._workers = settings.workers if settings.workers > 0 else (os.cpu_count() or 1)
        self._fleet: _Fleet | None = None
        self._pool = SlotPool("codegen-eval-container")
        self._slots: list[_Slot] = []
        self._where = ""
        self._engine = ""
        self._image_id = ""
        self._lock = threading.Lock()
        self._closed = False
        self._entered = False
        self._previous_sigterm: Any = None
        # Writable tmpfs sizes: a file may grow to file_size_mb (RLIMIT_FSIZE); allow a few of them.
        self.tmpfs_mb = max(4 * settings.file_size_mb, 64)
        # tmpfs pages (three mounts and /dev/shm) are charged to the container's memory cgroup, as is the
        # supervisor (~15 MiB).
        self.container_memory_mb = settings.memory_mb + 3 * self.tmpfs_mb + _SHM_MB + 128
        self.pids = settings.max_processes + 2  # the supervisor, and one spare so it can always fork
        self.supervisor_config = json.dumps(
            {
                "output_bytes": settings.output_bytes,
                "stderr_bytes": min(STDERR_TAIL_BYTES, settings.output_bytes),
                "file_size_bytes": settings.file_size_mb << 20,
                "max_open_files": settings.max_open_files,
                "workdir": WORKDIR,
                "env": {
                    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOME": WORKDIR,
                    "PWD": WORKDIR,
                    "PYTHONHASHSEED": "0",
                    "TMPDIR": "/tmp",
                    "LANG": "C.UTF-8",
                    "PYTHONDONTWRITEBYTECODE": "1",
                    **_THREAD_ENV,
                },
                "wipe": list(_WIPE),
                "preload": list(settings.preload),
                "sources": core.shipped_sources(),  # core.py and seccomp.py: the package is not in the image
            }
        )

    @property
    def concurrency(self) -> int:
        return self._workers

    @property
    def run_id(self) -> str:
        return self._fleet.run_id if self._fleet is not None else ""

    # ----------------------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> Self:
        if self._entered:
            raise SandboxError("a ContainerSandbox can be entered only once")
        self._entered = True
        client, self._where = connect()
        import docker

        try:
            image = client.images.get(self.image)
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(
                f"container image {self.image} not found at {self._where}; build it with "
                "`codegen-eval sandbox build-image` (or scripts/setup-container-engine.sh)"
            ) from exc
        self._image_id = str(image.id)
        version = client.version()
        podman = any("podman" in str(c.get("Name", "")).lower() for c in version.get("Components") or ())
        self._engine = f"{'podman' if podman else 'docker'} {version.get('Version', '?')}"
        self._fleet = fleet = _Fleet(self, client)
        atexit.register(self.close)
        self._install_sigterm()
        self._slots = [_Slot(fleet, i) for i in range(self._workers)]
        try:
            self._pool.start(self._slots)
        except BaseException:
            self.close()
            raise
        log.info(
            "container sandbox: %d containers from %s on %s (run %s)",
            self._workers,
            self.image,
            self._engine,
            fleet.run_id,
        )
        return self

    def close(self) -> None:
        """Remove every container of this run. Idempotent; SIGINT/SIGTERM wait until it is done."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with _signals_deferred():
            if self._fleet is not None:
                self._fleet.closed = True  # a slot that loses its container now fails its job, starts no other
            self._pool.close()
            if self._fleet is not None:
                self._fleet.close()
            self._restore_sigterm()
            atexit.unregister(self.close)

    def _install_sigterm(self) -> None:
        """Turn SIGTERM into SystemExit so `with` blocks unwind and the containers are removed."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        self._previous_sigterm = signal.signal(signal.SIGTERM, on_sigterm)

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    # ----------------------------------------------------------------------------------------- running

    def run(self, job: ExecutionJob) -> ExecutionResult:
        if not self._entered or self._closed:
            raise SandboxError("the container sandbox is not open (use it as a context manager)")
        program = job.program.encode("utf-8", errors="surrogatepass")
        return self._pool.run(Pending(program, job.timeout_s, (job.memory_mb or self.settings.memory_mb) << 20))

    def layers(self) -> Mapping[str, str]:
        """Each layer as the first container's supervisor observed it from inside (not as configured)."""
        if not self._slots or self._slots[0].worker is None:
            raise SandboxError("the container sandbox is not started (use it as a context manager)")
        hello = self._slots[0].worker.hello
        seen: dict[str, Any] = hello.get("observed", {})
        net = seen.get("net")
        engine_seccomp = {"0": "OFF", "1": "strict", "2": "on (the engine's default profile; ours: syscall_filter)"}
        return {
            "engine": f"{self._engine} at {self._where}",
            "image": f"{self.image} ({self._image_id[:19]})",
            "network": "isolated (loopback only)" if net == ["lo"] else f"NOT isolated: interfaces {net}",
            "pid_namespace": "on (supervisor is pid 1)" if seen.get("pid") == 1 else "OFF",
            "readonly_root": "on" if seen.get("root_read_only") else "OFF",
            "private_tmp": ", ".join(_WIPE) + " (private to the container, emptied after every program)",
            "uid": f"{seen.get('uid', '?')}:{seen.get('gid', '?')}",
            "capabilities": "none" if seen.get("CapEff") == "0000000000000000" else f"CapEff {seen.get('CapEff')}",
            "no_new_privs": "on" if seen.get("NoNewPrivs") == "1" else "OFF",
            "seccomp": engine_seccomp.get(str(seen.get("Seccomp")), f"unknown ({seen.get('Seccomp')})"),
            "supervisor": "pid 1, not dumpable" if hello.get("protected") else "pid 1, DUMPABLE",
            "syscall_filter": seccomp.describe(str(hello.get("seccomp_off", "the supervisor did not say"))),
            "memory_cgroup": f"{self.container_memory_mb} MiB",
            "pids_cgroup": str(self.pids),
            "rlimits": (
                f"as={self.settings.memory_mb}MiB cpu=timeout+1s fsize={self.settings.file_size_mb}MiB "
                f"nofile={self.settings.max_open_files} core=0"
            ),
            "interpreter": f"{self.python} ({hello.get('python', '?')})",
            "workers": str(self._workers),
        }


class _Slot:
    """One unit of concurrency: owns at most one container at a time, replaced when in doubt."""

    def __init__(self, fleet: _Fleet, index: int) -> None:
        self.fleet = fleet
        self.index = index
        self.worker: _Worker | None = None
        self._next: Future[_Worker] | None = None  # a replacement starting in the background
        self._holding: Pending | None = None

    def ensure(self) -> _Worker:
        if self.worker is None:
            upcoming, self._next = self._next, None
            if upcoming is not None:
                try:
                    self.worker = upcoming.result()
                except SandboxError as exc:
                    log.warning("replacement container failed to start (%s); trying again", exc)
            if self.worker is None:
                self.worker = self.fleet.start(self.index)
        return self.worker

    # The SlotPool's side: start, serve, release, kill.

    def start(self) -> None:
        self.ensure()

    def serve(self, pool: SlotPool) -> None:
        while isinstance(item := pool.take(), Pending):
            self._holding = item
            try:
                item.finish(self.run(item))
            except SandboxError as exc:  # this job's infrastructure fault; the slot goes on with a fresh container
                item.fail(exc)
            self._holding = None

    def release(self, error: SandboxError) -> None:
        if self._holding is not None:
            self._holding.fail(error)
            self._holding = None

    def kill(self) -> None:
        upcoming, self._next = self._next, None
        if upcoming is not None and self.worker is None and upcoming.exception() is None:
            self.worker = upcoming.result()
        self.drop(wait=True)

    def drop(self, wait: bool) -> None:
        if self.worker is not None:
            worker, self.worker = self.worker, None
            self.fleet.discard(worker, wait)
            if not wait and self._next is None:
                self._next = self.fleet.start_later(self.index)

    def run(self, item: Pending) -> ExecutionResult:
        lost = ""
        # The program cannot end its container (PID 1 ignores its signals; OOM kills pick the program first):
        # a container that vanishes was removed or crashed from outside. Run the program again on a fresh one.
        for _attempt in range(2):
            outcome = self._attempt(self.ensure(), item)
            if isinstance(outcome, ExecutionResult):
                return outcome
            lost = outcome
            log.warning("%s; retrying on a fresh container", lost)
        raise SandboxError(lost)

    def _attempt(self, worker: _Worker, item: Pending) -> ExecutionResult | str:
        """The result, or why the container was lost (then the program may not have run)."""
        started = time.monotonic()
        job = core.JOB.pack(0, item.timeout_s, item.memory_bytes, len(item.payload)) + item.payload
        try:
            answer = worker.request(job, item.timeout_s + _GRACE_S)
        except TimeoutError:
            # The supervisor enforces the timeout itself; silence past the grace period means the container is
            # wedged (for instance starved by the program). The program had its time: a timeout.
            log.warning("container %s did not answer; replacing it", worker.name)
            self.drop(wait=False)
            note = "sandbox: the container stopped answering; it was replaced"
            return ExecutionResult(ExitKind.TIMEOUT, None, signal.SIGKILL, "", note, time.monotonic() - started)
        except OSError as exc:
            self.drop(wait=False)
            return f"lost the connection to container {worker.name}: {exc}"
        if answer is None:
            return self._died(worker, started)
        fields, body = answer
        if fields[1] == core.FAULT:
            self.drop(wait=False)
            raise SandboxError(f"supervisor fault in container {worker.name}: {decode_output(body)}")
        result = make_result(fields, body)
        if result.kind is not ExitKind.EXITED or not fields[-1]:
            self.drop(wait=False)  # a limit was hit or something may be left behind: start afresh
        return result

    def _died(self, worker: _Worker, started: float) -> ExecutionResult | str:
        """The container ended mid-program. The memory cgroup's OOM killer is the one cause a program has."""
        state = self.fleet.state(worker)
        self.drop(wait=False)
        if state.get("OOMKilled"):
            note = "sandbox: the container ran out of memory"
            return ExecutionResult(ExitKind.MEMORY_LIMIT, None, signal.SIGKILL, "", note, time.monotonic() - started)
        detail = worker.diagnostics.decode("utf-8", "replace").strip()
        return f"container {worker.name} ended unexpectedly (status {state.get('ExitCode', 'gone')})" + (
            f": {detail[-500:]}" if detail else ""
        )


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while containers are removed, so a second Ctrl-C cannot leave some behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


__all__ = ["DEFAULT_IMAGE", "LABEL", "ContainerSandbox", "connect", "prune"]
