"""A local two-node Ray cluster on loopback, started and stopped by a module-scoped fixture (`cluster`).

Import the fixture into a test module (`from tests.ray_cluster import Cluster, cluster`) after skipping when Ray is
missing. Each node has one CPU and a small object store; the head notices a dead node in ~1.5 s.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

RAY = str(Path(sys.executable).with_name("ray"))
MEMORY = "100000000"  # object store per node: 100 MB (the minimum Ray accepts is 75 MB)
# Notice a dead node in ~1.5 s instead of ~30 s (read by the head's GCS at start).
FAST_FAILURE = {"RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "3"}


def _ray_processes(port: int) -> list[tuple[int, list[bytes]]]:
    """(pid, argv) of every process of the cluster on `port` (each names the head's GCS address or port), so the
    fixture finds and stops its own processes and never another cluster's on the same machine."""
    marks = (f":{port}".encode(), f"={port}".encode())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(marks) for a in argv):
            found.append((int(entry.name), argv))
    return found


@dataclass
class Cluster:
    address: str
    env: dict[str, str]
    port: int

    def worker_raylet(self) -> int:
        """The pid of the second node's raylet (its command line names the node id; the head's says it is head)."""
        for pid, argv in _ray_processes(self.port):
            if argv and argv[0].endswith(b"raylet") and not any(b"__internal_head__" in a for a in argv):
                return pid
        raise AssertionError("the second node's raylet is not running")


def _stop(port: int) -> None:
    """SIGKILL this cluster's processes (`ray stop` would stop every Ray process on the machine)."""
    for _ in range(3):
        procs = _ray_processes(port)
        if not procs:
            return
        for pid, _argv in procs:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    port = _free_port()
    env = {**os.environ, **FAST_FAILURE, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--object-store-memory", MEMORY]
    common += ["--disable-usage-stats"]
    head = [RAY, "start", "--head", "--port", str(port), "--include-dashboard", "false", *common]
    try:
        subprocess.run(head, env=env, check=True, capture_output=True, timeout=120)
        worker = [RAY, "start", "--address", f"127.0.0.1:{port}", *common]
        subprocess.run(worker, env=env, check=True, capture_output=True, timeout=120)
        yield Cluster(f"127.0.0.1:{port}", env, port)
    finally:
        _stop(port)
