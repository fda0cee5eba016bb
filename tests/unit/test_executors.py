"""Executor config: local runs' config (and hash) as before executors existed; bad options and no Ray refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from codegen_eval.config import RunConfig, from_mapping
from codegen_eval.errors import UsageError
from codegen_eval.executors import check
from codegen_eval.executors.ray import RayOptions
from tests.conftest import REPO


def test_executor_changes_neither_hash_nor_a_local_config() -> None:
    local = RunConfig()
    distributed = RunConfig(executor=(("address", "auto"), ("kind", "ray")))
    assert "executor" not in local.to_dict()
    assert distributed.to_dict()["executor"] == {"address": "auto", "kind": "ray"}
    # Not hashed at all, so no run's hash moved when the field was added.
    assert "executor" not in local.result_dict() and "executor" not in distributed.result_dict()
    assert local.config_hash() == distributed.config_hash()
    assert local.differences(distributed) == []
    assert from_mapping(distributed.to_dict(), "run.json") == distributed
    assert from_mapping(local.to_dict(), "run.json") == local


def test_executor_config_forms() -> None:
    assert from_mapping({"executor": "ray"}, "y").executor == (("kind", "ray"),)
    assert from_mapping({"executor": "local"}, "y").executor == ()
    assert from_mapping({"executor": {"kind": "ray", "actors_per_node": 2}}, "y").executor == (
        ("actors_per_node", "2"),
        ("kind", "ray"),
    )
    with pytest.raises(UsageError, match="'executor' must be"):
        from_mapping({"executor": {"address": "auto"}}, "y")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "spark"}, "unknown executor 'spark'"),
        ({"kind": "local", "address": "auto"}, "the local executor takes no options"),
        ({"kind": "ray", "adress": "auto"}, "unknown ray executor option"),
        ({"kind": "ray", "actors_per_node": "0"}, "must be at least 1"),
        ({"kind": "ray", "in_flight": "many"}, "must be a number"),
    ],
)
def test_bad_executor_options_are_usage_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check(options)


def test_ray_options_defaults() -> None:
    assert RayOptions.parse({"kind": "ray"}) == RayOptions()
    assert RayOptions.parse({"address": "ray://head:10001", "in_flight": "8"}).in_flight == 8


def test_without_ray_the_error_names_the_extra(tmp_path: Path) -> None:
    blocked = (
        "import runpy, sys\n"
        "sys.modules['ray'] = None  # `import ray` now fails as if it were not installed\n"
        "runpy.run_module('codegen_eval', run_name='__main__', alter_sys=True)\n"
    )
    for command in (["run", "--limit", "1"], ["evaluate", str(tmp_path / "s.jsonl"), "--ignore-incomplete"]):
        (tmp_path / "s.jsonl").write_text('{"task_id": "HumanEval/0", "completion": "    return 1\\n"}\n')
        r = subprocess.run(
            [sys.executable, "-c", blocked, *command, "--executor", "ray", "--no-progress"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2, r.stderr
        assert r.stderr == "error: --executor ray needs Ray: pip install 'codegen-eval[ray]'\n"
        assert not any(p.name != "s.jsonl" for p in tmp_path.iterdir())  # refused before a run directory
