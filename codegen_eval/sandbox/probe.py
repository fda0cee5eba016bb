"""Which isolation layers the process sandbox can use here (for `codegen-eval list` and the sandbox)."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Literal

from codegen_eval.sandbox import seccomp
from codegen_eval.sandbox.base import SandboxSettings

log = logging.getLogger(__name__)

SANDBOX_VENV_PYTHON = "/opt/codegen-eval/sandbox-venv/bin/python"
FALLBACK_PYTHON = "/usr/bin/python3"
PYTHON_ENV_VAR = "CODEGEN_EVAL_SANDBOX_PYTHON"
UID_BASE = 60000  # workers run as UID_BASE, UID_BASE+1, ... when the harness is root
UID_RANGE = 1000
PROBE_TIMEOUT_S = 20.0

Mode = Literal["bubblewrap", "uid", "none"]


@dataclass(frozen=True, slots=True)
class Plan:
    """How workers will be started, decided once per sandbox."""

    mode: Mode  # bubblewrap: namespaces + uid; uid: only a dedicated uid (root); none: rlimits only
    interpreter: str
    bwrap: str  # path, "" when unused
    bwrap_version: str
    keep_visible: tuple[str, ...]  # paths under $HOME bound back in after hiding $HOME (non-root bubblewrap)
    home: str  # hidden $HOME, "" when not hidden
    bwrap_off: str  # why bubblewrap is off, "" when on


def tmpfs_bytes(settings: SandboxSettings) -> int:
    """Size of the private /tmp (which also holds the working directory): four times the file-size limit."""
    return max(64, 4 * settings.file_size_mb) << 20


def bwrap_args(bwrap: str, settings: SandboxSettings, *, home: str = "", keep: tuple[str, ...] = ()) -> list[str]:
    """bubblewrap options: every namespace, read-only host root, private /tmp, /dev/shm, /run and /var/tmp; the
    command itself is PID 1 of its namespace (no bubblewrap process shares the namespace with programs)."""
    size = str(tmpfs_bytes(settings))
    args = [
        bwrap, "--unshare-all",
        "--unshare-user",  # implied when unprivileged; explicit so that --disable-userns is accepted
        "--disable-userns", "--die-with-parent", "--new-session",
        # Without this, bubblewrap's own init is PID 1 beside the programs: same uid, dumpable, and holding the
        # worker's protocol pipes, so a program could ptrace it and write forged results (found by a hostile
        # program). As PID 1 the worker is also out of reach of the programs' signals.
        "--as-pid-1",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--mqueue", "/dev/mqueue",  # mounted so that the worker can see (and remove) POSIX message queues
        "--proc", "/proc",
        "--size", size, "--tmpfs", "/tmp",
        "--size", size, "--tmpfs", "/dev/shm",
        # Host daemons' Unix sockets live under /run; a network namespace does not stop those.
        "--tmpfs", "/run", "--remount-ro", "/run",
        # Another world-writable host directory, where Unix sockets have been found (the syscall filter refuses
        # AF_UNIX sockets anyway; this hides what would be there to connect to).
        "--tmpfs", "/var/tmp", "--remount-ro", "/var/tmp",
        "--remount-ro", "/dev",  # device nodes still work; only /tmp, /dev/shm and /dev/mqueue take writes
    ]  # fmt: skip
    if home:
        args += ["--tmpfs", home]
        for path in keep:
            args += ["--ro-bind", path, path]
        args += ["--remount-ro", home]
    args += ["--chdir", "/tmp"]
    return args


def _reachable(path: str, uid: int) -> bool:
    """Whether `uid` (with no supplementary groups, gid == uid) can traverse to and use `path`."""
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    current = os.sep
    for part in [*parts[1:], None]:
        try:
            st = os.stat(current)
        except OSError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if st.st_uid == uid:
                ok = bool(st.st_mode & stat.S_IXUSR)
            elif st.st_gid == uid:
                ok = bool(st.st_mode & stat.S_IXGRP)
            else:
                ok = bool(st.st_mode & stat.S_IXOTH)
        else:
            ok = bool(st.st_mode & (stat.S_IXOTH | stat.S_IROTH)) or st.st_uid == uid
        if not ok:
            return False
        if part is None:
            return True
        current = os.path.join(current, part)
    return True


def runnable_by(python: str, uid: int | None) -> bool:
    """Whether `uid` can execute `python` and reach its installation (None: the current user)."""
    if uid is None:
        return os.access(python, os.X_OK)
    if not _reachable(python, uid):
        return False
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return all(_reachable(p, uid) for p in (sys.prefix, sys.base_prefix))
    return True


def resolve_interpreter(configured: str, uid: int | None) -> str:
    """settings.python, else $CODEGEN_EVAL_SANDBOX_PYTHON, else the sandbox venv, else ours, else Debian's."""
    if configured:
        return configured
    from_env = os.environ.get(PYTHON_ENV_VAR, "")
    if from_env:
        return from_env
    if os.path.exists(SANDBOX_VENV_PYTHON):
        return SANDBOX_VENV_PYTHON
    if runnable_by(sys.executable, uid):
        return sys.executable
    return FALLBACK_PYTHON


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str] | str:
    """A probe's command, its output captured as text; why it could not run, or timed out, as a string."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, **kwargs)
    except (OSError, subprocess.SubprocessError) as e:
        return str(e)


def _prefixes(python: str) -> tuple[str, ...]:
    """Installation directories of `python` (to keep them visible when $HOME is hidden)."""
    done = _run([python, "-c", "import sys; print(sys.prefix); print(sys.base_prefix)"])
    if isinstance(done, str) or done.returncode != 0:
        return ()
    found = {os.path.realpath(p) for p in done.stdout.split("\n") if p}
    found.add(os.path.dirname(os.path.dirname(os.path.realpath(python))))
    return tuple(sorted(found))


def _home_to_hide(python: str) -> tuple[str, tuple[str, ...]]:
    """As a normal user, hide $HOME (keys, tokens) but keep the interpreter visible if it lives there."""
    home = os.path.realpath(os.path.expanduser("~"))
    if home in ("/", "") or not os.path.isdir(home):
        return "", ()
    inside = tuple(p for p in _prefixes(python) if p == home or p.startswith(home + os.sep))
    if any(p == home for p in inside):
        return "", ()
    return home, inside


def try_bwrap(
    bwrap: str, settings: SandboxSettings, python: str, uid: int | None, home: str, keep: tuple[str, ...]
) -> str:
    """Start `python -c pass` inside the sandbox as `uid`; "" when that works, else the reason."""
    cmd = [*bwrap_args(bwrap, settings, home=home, keep=keep), "--", python, "-c", "pass"]
    groups: list[int] | None = [] if uid is not None else None
    done = _run(cmd, user=uid, group=uid, extra_groups=groups, env=minimal_env(python, "/tmp"), cwd="/")
    if isinstance(done, str):
        return done
    if done.returncode != 0:
        return (done.stderr.strip() or f"exit status {done.returncode}").splitlines()[-1]
    return ""


def minimal_env(python: str, home: str) -> dict[str, str]:
    """The whole environment a program sees: nothing of the harness's own variables leaks in."""
    bindir = os.path.dirname(python)
    path = "/usr/local/bin:/usr/bin:/bin"
    if bindir and bindir not in path.split(":"):
        path = f"{bindir}:{path}"
    return {
        "PATH": path,
        "HOME": home,
        "LANG": "C.UTF-8",
        # Reproducible str/bytes hashing (set iteration order) across workers and runs.
        "PYTHONHASHSEED": "0",
        # Workers already fill the cores; a BLAS pool per program would oversubscribe them and can exceed
        # the process limit.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def plan(settings: SandboxSettings, probe_uid: int | None) -> Plan:
    """Decide how to isolate workers. `probe_uid` is a uid leased for a worker (root), None otherwise."""
    root = os.geteuid() == 0
    python = resolve_interpreter(settings.python, probe_uid if root else None)
    bwrap = shutil.which("bwrap") or ""
    version = ""
    if not bwrap:
        why = "bwrap not found (apt-get install bubblewrap)"
    else:
        done = _run([bwrap, "--version"])
        version = "" if isinstance(done, str) else done.stdout.strip().rpartition(" ")[2]
        home, keep = ("", ()) if root else _home_to_hide(python)
        error = try_bwrap(bwrap, settings, python, probe_uid if root else None, home, keep)
        if not error:
            return Plan("bubblewrap", python, bwrap, version, keep, home, bwrap_off="")
        why = f"bwrap does not start: {error}"
    mode: Mode = "uid" if root else "none"
    return Plan(mode, python, "", version, keep_visible=(), home="", bwrap_off=why)


def nproc_enforced(settings: SandboxSettings, mode: Mode) -> bool:
    """RLIMIT_NPROC counts every process of a uid; without a private uid or user namespace it is unusable."""
    return settings.max_processes > 0 and (mode != "none" or os.geteuid() == 0)


def expected_layers(p: Plan, settings: SandboxSettings, uids: str) -> dict[str, str]:
    """The layers a plan provides, as recorded in run.json (the sandbox confirms them with its workers)."""
    ns = p.mode == "bubblewrap"
    memory = f"{settings.memory_mb}MiB" if settings.memory_mb else "unlimited"
    nproc = str(settings.max_processes) if nproc_enforced(settings, p.mode) else "off (shared uid)"
    layers = {
        "bubblewrap": f"on ({p.bwrap_version})" if ns else f"off ({p.bwrap_off or 'no bubblewrap'})",
        "network": "isolated" if ns else "shared (no network namespace)",
        "pid_namespace": "on" if ns else "off",
        "readonly_root": "on" if ns else "off (file permissions only)",
        "private_tmp": "on" if ns else "off",
        "uid": uids,
        "rlimits": (
            f"as={memory} cpu=timeout+1s fsize={settings.file_size_mb}MiB nofile={settings.max_open_files} "
            f"nproc={nproc} core=0"
        ),
        "interpreter": p.interpreter,
        # What a worker will install; layers() reports what it actually got.
        "syscall_filter": seccomp.describe(
            "" if seccomp.machine() in seccomp.TABLES else f"no table for {seccomp.machine()}"
        ),
    }
    if ns and p.home:
        layers["home_hidden"] = p.home
    return layers


def probe(settings: SandboxSettings | None = None) -> dict[str, str]:
    """Isolation layers the process sandbox would use here, without starting its workers."""
    settings = settings or SandboxSettings()
    root = os.geteuid() == 0
    uid = UID_BASE if root else None
    p = plan(settings, uid)
    uids = f"{UID_BASE}+ (one per worker)" if root else f"{os.getuid()} (current user)"
    layers = expected_layers(p, settings, uids)
    if p.mode == "none":
        layers["status"] = (
            "refused unless allow_unsandboxed" if not settings.allow_unsandboxed else "unsandboxed (opt-in)"
        )
    return layers
