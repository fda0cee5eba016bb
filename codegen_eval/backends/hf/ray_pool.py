"""Data-parallel hf generation on Ray (`-B ray_actors=N`): one actor per GPU or node, each loading the model once."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from codegen_eval.backends.base import throughput
from codegen_eval.errors import BackendError, UsageError
from codegen_eval.ray_session import connect, leave
from codegen_eval.records import Completion, GenerationRequest

log = logging.getLogger(__name__)

RAY_MISSING = "backend 'hf' option ray_actors needs Ray: pip install 'codegen-eval[ray]'"
RAY_OPTIONS = ("ray_actors", "ray_address")  # the driver's own options; the actors get every other one
_START_TIMEOUT_S = 1800.0  # loading a large checkpoint on every node can take minutes; never wait forever
_CHECK_TIMEOUT_S = 10.0  # actors still alive? (asked before a shard is sent again)


@dataclass(frozen=True, slots=True)
class ActorReport:
    """What an actor says once its model is loaded, or the one-line error that stopped it loading."""

    node_id: str
    hostname: str
    provenance: Mapping[str, str]
    error: str | None = None
    usage_error: bool = False  # the user's fault (UsageError) rather than the model's (BackendError)


class HFActor:
    """The actor's class: an in-process HFBackend on the node (and GPU) Ray placed it on."""

    def __init__(self, model: str, options: Mapping[str, str]) -> None:
        import ray

        from codegen_eval.backends.hf.backend import HFBackend

        self._backend: HFBackend | None = None
        self._finished: list[int] = []  # sequences finished, as the backend reports them
        node_id = ray.get_runtime_context().get_node_id()
        try:
            self._backend = HFBackend(model, options)
        except UsageError as e:  # reported by report(): a failed actor constructor reads as a death in Ray
            self._report = ActorReport(node_id, socket.gethostname(), {}, str(e), usage_error=type(e) is UsageError)
            return
        self._backend.progress = self._finished.append
        self._report = ActorReport(node_id, socket.gethostname(), dict(self._backend.provenance()))

    def report(self) -> ActorReport:
        return self._report

    def generate(self, requests: Sequence[GenerationRequest]) -> tuple[list[Completion], int]:
        """The completions of one shard, and how many sequences finished (for the driver's progress)."""
        assert self._backend is not None
        self._finished.clear()
        return self._backend.generate(requests), sum(self._finished)

    def run_stats(self) -> dict[str, int | float | None]:
        assert self._backend is not None
        return self._backend.run_stats()

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


@dataclass(slots=True, eq=False)
class _Actor:
    handle: Any  # a ray.actor.ActorHandle
    report: ActorReport = ActorReport("", "", {})
    alive: bool = True


class RayPool:
    """The driver side: N HFActors spread over the cluster; a generate call is split into N contiguous shards.

    Outputs do not depend on the sharding: greedy output does not depend on batch company, and each sequence's
    sampling seed comes from (request seed, sample index, prompt), never from its position (see HFBackend).
    """

    def __init__(self, model: str, options: Mapping[str, str], actors: int, address: str) -> None:
        try:
            import ray
        except ImportError:
            raise UsageError(RAY_MISSING) from None
        self._ray = ray
        self._connected_here = False
        self._actors: list[_Actor] = []
        self.resent_shards = 0
        self.lost_actors = 0
        try:
            self._open(model, {k: v for k, v in options.items() if k not in RAY_OPTIONS}, actors, address)
        except BaseException:
            self.close()
            raise

    def _open(self, model: str, options: Mapping[str, str], count: int, address: str) -> None:
        ray = self._ray
        self._connected_here = connect(ray, address, "hf -B ray_address")
        resources = ray.cluster_resources()
        # One GPU per actor where the cluster has GPUs (each actor then sees one as cuda:0), else one CPU.
        gpus = resources.get("GPU", 0)
        kind, have = ("GPU", gpus) if gpus >= 1 else ("CPU", resources.get("CPU", 0))
        if have < count:
            raise UsageError(f"hf: ray_actors={count} but the Ray cluster has {have:g} {kind}s (one per actor)")
        demand = {"num_gpus": 1} if kind == "GPU" else {"num_cpus": 1}
        remote = ray.remote(HFActor)
        self._actors = [  # each report filled in once its actor has loaded the model
            _Actor(remote.options(**demand, max_restarts=0, scheduling_strategy="SPREAD").remote(model, options))
            for _ in range(count)
        ]
        refs = {a.handle.report.remote(): a for a in self._actors}
        ready, not_ready = ray.wait(list(refs), num_returns=len(refs), timeout=_START_TIMEOUT_S)
        if not_ready:
            raise BackendError(
                f"hf: {len(not_ready)} of {count} Ray actors did not load the model within {_START_TIMEOUT_S:g} s"
            )
        for ref in ready:
            try:
                report: ActorReport = ray.get(ref)
            except ray.exceptions.RayError as e:
                raise BackendError(f"hf: a Ray actor failed to start: {_short(e)}") from None
            if report.error is not None:
                raise (UsageError if report.usage_error else BackendError)(report.error)
            refs[ref].report = report

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Callable[[int], None] | None
    ) -> list[Completion]:
        ray = self._ray
        live = [a for a in self._actors if a.alive]
        if not requests:
            return []
        if not live:
            raise BackendError("hf: every Ray actor is gone; the run is resumable (--resume)")
        shards = _shards(len(requests), len(live))
        results: dict[int, list[Completion]] = {}
        pending = {
            live[i].handle.generate.remote(requests[s:e]): (i, live[i], False) for i, (s, e) in enumerate(shards)
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            shard, actor, resent = pending.pop(ref)
            try:
                completions, finished = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as e:
                if actor.alive:
                    actor.alive, self.lost_actors = False, self.lost_actors + 1
                spare = self._spare(exclude=actor)
                if resent or spare is None:
                    raise BackendError(
                        f"hf: a Ray actor on {actor.report.hostname} died ({_short(e)}); "
                        "the run is resumable (--resume)"
                    ) from None
                log.warning(
                    "hf: a Ray actor on %s died; its shard goes to %s", actor.report.hostname, spare.report.hostname
                )
                self.resent_shards += 1
                s, e_ = shards[shard]
                pending[spare.handle.generate.remote(requests[s:e_])] = (shard, spare, True)
                continue
            results[shard] = completions
            if progress is not None and finished:
                progress(finished)
        return [c for i in range(len(shards)) for c in results[i]]

    def _spare(self, exclude: _Actor) -> _Actor | None:
        """A live actor other than `exclude`, asked first whether it still answers."""
        for actor in self._actors:
            if actor is exclude or not actor.alive:
                continue
            ready, _ = self._ray.wait([actor.handle.report.remote()], timeout=_CHECK_TIMEOUT_S)
            try:
                if ready:
                    self._ray.get(ready[0])
                    return actor
            except self._ray.exceptions.RayError:
                pass
            actor.alive = False
            self.lost_actors += 1
        return None

    def provenance(self) -> dict[str, str]:
        """The actors' provenance (a value that differs between them reads `varies: a, b`), plus the nodes used."""
        reports = [a.report for a in self._actors]
        prov: dict[str, str] = {}
        for key in reports[0].provenance:
            values = list(dict.fromkeys(r.provenance.get(key, "") for r in reports))
            prov[key] = values[0] if len(values) == 1 else "varies: " + ", ".join(values)
        nodes = list(dict.fromkeys((r.hostname, r.node_id) for r in reports))
        prov["ray_actors"] = str(len(reports))
        prov["ray_nodes"] = ", ".join(f"{host} ({node[:12]})" for host, node in nodes)
        return prov

    def run_stats(self, generate_s: float) -> dict[str, int | float | None]:
        """The actors' counts summed; time and throughput as the driver saw them."""
        ray = self._ray
        totals: dict[str, int] = {}
        for actor in self._actors:
            if not actor.alive:
                continue
            try:
                stats = ray.get(actor.handle.run_stats.remote(), timeout=_CHECK_TIMEOUT_S)
            except ray.exceptions.RayError:
                continue
            for key, value in stats.items():
                if key not in ("generate_s", "completion_tokens_per_s") and isinstance(value, int):
                    totals[key] = totals.get(key, 0) + value
        return {
            **totals,
            **throughput(totals.get("completion_tokens", 0), generate_s),
            "ray_lost_actors": self.lost_actors,
            "ray_resent_shards": self.resent_shards,
        }

    def close(self) -> None:
        ray = self._ray
        actors, self._actors = self._actors, []
        leave(ray, [a.handle for a in actors if a.alive], [a.handle for a in actors], self._connected_here)
        self._connected_here = False


def _shards(total: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous (start, end) slices of range(total), sizes differing by at most one; none empty."""
    parts = max(1, min(parts, total))
    size, extra = divmod(total, parts)  # the first `extra` shards take one more
    return [(i * size + min(i, extra), (i + 1) * size + min(i + 1, extra)) for i in range(parts)]


def _short(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
