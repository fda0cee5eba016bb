"""The Ray executor: one sandbox host (a Ray actor holding our own sandbox) per node; jobs are actor calls.

Ray is imported only when a RayExecutor opens, so the default install never needs it. The driver deduplicates
before anything is sent (execute.py), so identical programs run once across the whole cluster. Each actor opens
the configured sandbox on its own node, with the same settings as a local run: isolation is what it is on that
machine, and each node's layers are recorded in run.json. An actor that dies (its node killed, its process
gone) makes every call in flight on it fail with RayActorError: those jobs are sent again to the actors left,
and a key's result is yielded once, whichever attempt returned it.
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from codegen_eval.errors import SandboxError, UsageError
from codegen_eval.ray_session import connect, leave
from codegen_eval.records import ExecutionJob, ExecutionResult
from codegen_eval.sandbox.base import SandboxSettings
from codegen_eval.summaries import ExecutorInfo, NodeInfo, SandboxInfo

log = logging.getLogger(__name__)

# Threads per actor: the most calls it serves at once (it runs no more than its sandbox's concurrency in practice,
# because the driver bounds what is in flight per actor).
MAX_ACTOR_THREADS = 256


# RayOptions' numbers: (name, type, least value)
_NUMBERS = (("actors_per_node", int, 1), ("in_flight", int, 0), ("attempts", int, 1), ("start_timeout_s", float, 1))


@dataclass(frozen=True, slots=True)
class RayOptions:
    """`executor: {kind: ray, ...}` / `--executor ray -X key=value`."""

    address: str = "auto"  # auto: the cluster `ray start` made on this machine; ray://HOST:PORT; HOST:PORT; local
    actors_per_node: int = 1
    in_flight: int = 0  # calls in flight per actor; 0: twice its sandbox's concurrency
    attempts: int = 3  # sends of one job before its actors' deaths are a SandboxError
    start_timeout_s: float = 120.0  # for every actor to open its sandbox
    namespace: str = "codegen-eval"

    @staticmethod
    def parse(options: Mapping[str, str]) -> RayOptions:
        known = set(RayOptions.__dataclass_fields__) | {"kind"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(f"unknown ray executor option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values: dict[str, Any] = {}
        for name, caster, low in _NUMBERS:
            if name in options:
                try:
                    values[name] = caster(options[name])
                except ValueError:
                    raise UsageError(f"ray executor option {name} must be a number (got {options[name]!r})") from None
                if not values[name] >= low:
                    raise UsageError(f"ray executor option {name} must be at least {low} (got {options[name]!r})")
        for name in ("address", "namespace"):
            if name in options:
                if not options[name].strip():
                    raise UsageError(f"ray executor option {name} must not be empty")
                values[name] = options[name].strip()
        return RayOptions(**values)


@dataclass(frozen=True, slots=True)
class HostReport:
    """What a sandbox host says about itself once its sandbox is open."""

    node_id: str
    hostname: str
    ip: str
    layers: Mapping[str, str]
    concurrency: int
    version: str


class SandboxHost:
    """The actor's class: our sandbox, opened on the node the actor lives on."""

    def __init__(self, sandbox: str, settings: SandboxSettings) -> None:
        import ray

        from codegen_eval import __version__
        from codegen_eval.sandbox import SANDBOXES

        self._sandbox = SANDBOXES.load(sandbox)(settings).__enter__()
        ctx = ray.get_runtime_context()
        self._report = HostReport(
            node_id=ctx.get_node_id(),
            hostname=socket.gethostname(),
            ip=ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
            layers=dict(self._sandbox.layers()),
            concurrency=max(1, self._sandbox.concurrency),
            version=__version__,
        )

    def report(self) -> HostReport:
        return self._report

    def run(self, job: ExecutionJob) -> ExecutionResult:
        return self._sandbox.run(job)

    def close(self) -> None:
        self._sandbox.__exit__(None, None, None)


@dataclass(slots=True, eq=False)
class _Host:
    actor: Any  # a ray.actor.ActorHandle
    report: HostReport
    capacity: int
    load: int = 0
    alive: bool = True


class RayExecutor:
    kind = "ray"

    def __init__(self, options: RayOptions, sandbox: str, settings: SandboxSettings) -> None:
        self.options = options
        self._sandbox_name = sandbox
        self._settings = settings
        self._hosts: list[_Host] = []
        self._nodes: list[NodeInfo] = []
        self._retried_jobs = 0
        self._lost_actors = 0
        self._connected_here = False

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        try:
            import ray
        except ImportError:
            from codegen_eval.executors import RAY_MISSING

            raise UsageError(RAY_MISSING) from None
        try:
            self._open(ray)
        except BaseException:
            self._close(ray)
            raise
        return self

    def _open(self, ray: Any) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from codegen_eval import __version__

        self._connected_here = connect(ray, self.options.address, "--executor ray", self.options.namespace)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        if not nodes:
            raise SandboxError("--executor ray: the cluster has no live node")
        remote = ray.remote(SandboxHost)
        pending = []
        for node in nodes:
            for _ in range(self.options.actors_per_node):
                affinity = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
                options = remote.options(
                    num_cpus=0, max_concurrency=MAX_ACTOR_THREADS, max_restarts=0, scheduling_strategy=affinity
                )
                pending.append(options.remote(self._sandbox_name, self._settings))
        refs = {actor.report.remote(): actor for actor in pending}
        ready, not_ready = ray.wait(list(refs), num_returns=len(refs), timeout=self.options.start_timeout_s)
        for ref in not_ready:
            ray.kill(refs[ref])
        errors: list[str] = []
        for ref in ready:
            try:
                report: HostReport = ray.get(ref)
            except ray.exceptions.RayError as e:  # a node whose sandbox cannot start is left out, loudly
                errors.append(_short(e))
                log.warning("--executor ray: a sandbox host failed to start: %s", _short(e))
                continue
            if report.version != __version__:
                log.warning(
                    "--executor ray: node %s runs codegen-eval %s, this driver %s",
                    report.hostname,
                    report.version,
                    __version__,
                )
            in_flight = self.options.in_flight or 2 * report.concurrency
            self._hosts.append(_Host(refs[ref], report, in_flight))
        if not self._hosts:
            detail = errors[0] if errors else f"none started within {self.options.start_timeout_s:g} s"
            raise SandboxError(f"--executor ray: no sandbox host could start ({detail})")
        by_node: dict[str, list[HostReport]] = {}
        for host in self._hosts:
            by_node.setdefault(host.report.node_id, []).append(host.report)
        node_ip = {n["NodeID"]: str(n.get("NodeManagerAddress") or "") for n in nodes}  # as the cluster knows it
        self._nodes = [
            NodeInfo(r[0].hostname, r[0].node_id, node_ip.get(r[0].node_id) or r[0].ip, len(r), dict(r[0].layers))
            for r in by_node.values()
        ]

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        import ray

        self._close(ray)

    def _close(self, ray: Any) -> None:
        hosts, self._hosts = self._hosts, []
        leave(ray, [h.actor for h in hosts if h.alive], [h.actor for h in hosts], self._connected_here)
        self._connected_here = False

    # -- what ran where ------------------------------------------------------------------------------------
    def sandbox_info(self) -> SandboxInfo:
        """The layers every node agrees on; a layer that differs between nodes reads `varies` (see `nodes`)."""
        layers: dict[str, str] = {}
        keys = list(dict.fromkeys(k for n in self._nodes for k in n.layers))  # the sandbox's own order
        for key in keys:
            values = {n.layers.get(key, "absent") for n in self._nodes}
            layers[key] = values.pop() if len(values) == 1 else "varies by node"
        return SandboxInfo(self._sandbox_name, layers)

    def info(self) -> ExecutorInfo:
        return ExecutorInfo(
            kind=self.kind,
            address=self.options.address,
            nodes=tuple(self._nodes),
            retried_jobs=self._retried_jobs,
            lost_actors=self._lost_actors,
        )

    # -- the jobs ------------------------------------------------------------------------------------------
    def stream(self, jobs: Iterator[tuple[str, ExecutionJob]]) -> Iterator[tuple[str, ExecutionResult]]:
        import ray
        from ray.exceptions import ObjectLostError, RayActorError, RayTaskError

        retry: deque[str] = deque()  # keys whose actor died: sent again before new ones
        job_of: dict[str, ExecutionJob] = {}
        attempts: dict[str, int] = {}
        in_flight: dict[Any, tuple[str, _Host]] = {}  # ObjectRef -> (key, host)
        exhausted = False
        try:
            while True:
                while True:
                    live = [h for h in self._hosts if h.alive and h.load < h.capacity]
                    if not live:
                        break
                    if retry:
                        key = retry.popleft()
                    elif not exhausted:
                        item = next(jobs, None)
                        if item is None:
                            exhausted = True
                            continue
                        key, job_of[key] = item
                    else:
                        break
                    host = min(live, key=lambda h: h.load / h.capacity)
                    attempts[key] = attempts.get(key, 0) + 1
                    in_flight[host.actor.run.remote(job_of[key])] = (key, host)
                    host.load += 1
                if not in_flight:
                    if retry:
                        raise SandboxError(
                            f"--executor ray: every sandbox host died ({self._lost_actors} lost); "
                            "continue with --resume"
                        )
                    return
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
                for ref in ready:
                    key, host = in_flight.pop(ref)
                    host.load -= 1
                    try:
                        result: ExecutionResult = ray.get(ref)
                    except RayTaskError as e:  # the sandbox itself raised (an infrastructure fault, as locally)
                        raise SandboxError(f"sandbox on {host.report.hostname}: {_short(e)}") from None
                    except (RayActorError, ObjectLostError) as e:
                        self._lost(host, e)
                        if attempts[key] >= self.options.attempts:
                            raise SandboxError(
                                f"--executor ray: a job's sandbox host died {attempts[key]} times; "
                                "continue with --resume"
                            ) from None
                        self._retried_jobs += 1
                        retry.append(key)
                        continue
                    if key not in job_of:  # already yielded (cannot happen with one call per key; kept as a guard)
                        continue
                    del job_of[key]
                    yield key, result
        finally:
            for ref in in_flight:
                with suppress(Exception):  # its actor is gone
                    ray.cancel(ref)

    def _lost(self, host: _Host, error: BaseException) -> None:
        if host.alive:
            host.alive = False
            self._lost_actors += 1
            left = sum(h.alive for h in self._hosts)
            log.warning(
                "--executor ray: the sandbox host on %s died (%s); its jobs go to the %d left",
                host.report.hostname,
                type(error).__name__,
                left,
            )


def _short(error: BaseException) -> str:
    """The first line of an error, for one-line messages (Ray's are long)."""
    text = str(getattr(error, "cause", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
