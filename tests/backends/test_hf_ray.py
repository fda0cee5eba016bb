"""The hf backend data-parallel on a two-node Ray cluster (`-B ray_actors=N`): outputs identical to in-process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from codegen_eval.backends.hf import HFBackend
from codegen_eval.backends.hf.ray_pool import RAY_MISSING, _shards
from codegen_eval.errors import BackendError, UsageError
from codegen_eval.records import GenerationRequest, SamplingParams
from tests.conftest import run_cli
from tests.ray_cluster import Cluster, cluster

try:
    import ray  # noqa: F401

    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False

__all__ = ["cluster"]  # the fixture, imported to be used here
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install 'codegen-eval[ray]')")


def test_shards_are_contiguous_and_balanced() -> None:
    assert _shards(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert _shards(2, 4) == [(0, 1), (1, 2)]  # never an empty shard
    assert _shards(1, 1) == [(0, 1)]


def test_without_ray_one_line_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(UsageError) as e:
        HFBackend(str(tmp_path), {"ray_actors": "2"})
    assert str(e.value) == RAY_MISSING and "pip install 'codegen-eval[ray]'" in RAY_MISSING
    with pytest.raises(UsageError, match="ray_actors"):
        HFBackend(str(tmp_path), {"ray_actors": "-1"})


def _texts(run_dir: Path) -> dict[tuple[str, int], list[str]]:
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines() if line.strip()]
    return {(r["problem_id"], r["index"]): [t["raw"] for t in r["turns"]] for r in rows}


@pytest.mark.parametrize("mode", ["greedy", "sampled"])
@pytest.mark.slow
@needs_ray
def test_ray_actors_give_the_in_process_samples(
    tmp_path: Path, cluster: Cluster, tiny_codegen: Path, mode: str
) -> None:
    args = ["generate", "--model", f"hf:{tiny_codegen}", "--problems", "1-6", "--max-new-tokens", "24"]
    args += ["--no-progress"]
    if mode == "sampled":  # fp64: no rounding difference between batchings can tip a near-tie
        args += ["-n", "3", "--temperature", "0.8", "--seed", "7", "-B", "dtype=fp64"]
    local = run_cli(*args, "--output-dir", str(tmp_path / "local"), cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    ray_args = ["-B", "ray_actors=2", "-B", f"ray_address={cluster.address}"]
    distributed = run_cli(*args, *ray_args, "--output-dir", str(tmp_path / "ray"), cwd=tmp_path, env=cluster.env)
    assert distributed.returncode == 0, distributed.stderr

    want = _texts(tmp_path / "local")
    assert len(want) == (6 if mode == "greedy" else 18)
    assert _texts(tmp_path / "ray") == want

    meta = json.loads((tmp_path / "ray" / "run.json").read_text())
    local_meta = json.loads((tmp_path / "local" / "run.json").read_text())
    assert meta["config_hash"] == local_meta["config_hash"]  # where the model ran changes no text
    backend, local_backend = meta["backend"], local_meta["backend"]
    assert backend.pop("ray_actors") == "2"
    nodes = backend.pop("ray_nodes").split(", ")
    assert len(nodes) == 2  # SPREAD: one actor per node
    assert backend == local_backend
    stats = meta["backend_stats"]
    assert stats["completion_tokens"] == local_meta["backend_stats"]["completion_tokens"]
    assert stats["ray_lost_actors"] == 0


@pytest.mark.slow
@needs_ray
def test_a_dead_actor_shard_goes_to_a_live_one_then_a_clear_error(cluster: Cluster, tiny_codegen: Path) -> None:
    import ray

    prompts = ["def add(a, b):\n", "x = 1\n", "class A:\n", "import os\n", "def f():\n"]
    requests = [GenerationRequest(key=str(i), prompt=p, max_new_tokens=12) for i, p in enumerate(prompts)]
    seeded = SamplingParams(temperature=1.0, top_p=0.95, top_k=50, seed=3)
    requests += [GenerationRequest(key="s", prompt=prompts[0], max_new_tokens=12, n=4, sampling=seeded)]
    options = {"dtype": "fp64", "prefix_cache_mb": "0"}
    local = HFBackend(str(tiny_codegen), options)
    want = [c.texts for c in local.generate(requests)]
    local.close()

    pool = HFBackend(str(tiny_codegen), {**options, "ray_actors": "2", "ray_address": cluster.address})
    finished: list[int] = []
    pool.progress = finished.append
    try:
        assert [c.texts for c in pool.generate(requests)] == want
        assert sum(finished) == 5 + 4 and len(finished) == 2  # one report per shard, every sequence counted
        assert pool._pool is not None
        ray.kill(pool._pool._actors[1].handle)
        assert [c.texts for c in pool.generate(requests)] == want  # its shard was sent to the other actor
        stats = pool.run_stats()
        assert stats["ray_lost_actors"] == 1 and stats["ray_resent_shards"] == 1
        ray.kill(pool._pool._actors[0].handle)
        with pytest.raises(BackendError, match=r"resumable \(--resume\)"):
            pool.generate(requests)
    finally:
        pool.close()
