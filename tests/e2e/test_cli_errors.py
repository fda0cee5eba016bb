"""Bad input gets one clear line on stderr and exit status 2, never a traceback."""

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--bench", "humaneva"], "unknown benchmark 'humaneva'; did you mean 'humaneval'?"),
        (["run", "--model", "refrence"], "unknown backend 'refrence'; did you mean 'reference'?"),
        (["run", "-n", "1", "-k", "1,10"], "k=10 is larger than the number of samples n=1"),
        (["run", "--problems", "HumanEval/999"], "no problem matches 'HumanEval/999'"),
        (["run", "--problems", "²"], "no problem matches '²'"),
        (["run", "-B", "novalue"], "-B expects key=value"),
        (["run", "-B", "x=1"], "backend 'reference' has no options"),
        (["run", "--model", "replay:/nonexistent/s.jsonl"], "samples file not found"),
        (["run", "--model", "hf:/no/such/dir"], "error: hf: no such model folder or hub id: '/no/such/dir'"),
        (["run", "--model", "hf-/no/such/dir"], "unknown model 'hf-/no/such/dir'; did you mean 'hf:/no/such/dir'?"),
        (["run", "--model", "openai-gpt-4"], "unknown model 'openai-gpt-4'; did you mean 'openai:gpt-4'?"),
        (["run", "--model", "smollm2"], "unknown model 'smollm2'; did you mean 'smollm2-135m'?"),
        (["run", "--sandbox", "dokcer"], "unknown sandbox 'dokcer'"),
        (["evaluate", "/nonexistent.jsonl"], "samples file not found"),
        (["run", "--resume", "/nonexistent-run"], "is not a run directory"),
        (["run", "--timeout", "nan"], "--timeout must be a number of seconds in (0, 86400] (got nan)"),
        (["run", "--timeout", "inf"], "--timeout must be a number of seconds in (0, 86400] (got inf)"),
        (["run", "--timeout", "1e12"], "--timeout must be a number of seconds in (0, 86400]"),
        (["run", "--timeout", "-1"], "--timeout must be a number of seconds in (0, 86400]"),
        (["run", "--memory-mb", "-5"], "--memory-mb must be between 0 (no limit) and 1048576 MiB (got -5)"),
        (["run", "--memory-mb", "99999999"], "--memory-mb must be between 0 (no limit) and 1048576 MiB"),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    r = (
        run_cli(*args, "--no-progress", "--output-dir", str(tmp_path / "run"), cwd=tmp_path)
        if args[0] == "run"
        else run_cli(*args, cwd=tmp_path)
    )
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 3, r.stderr
    # Refused before any work: no run directory, named or default (tests/e2e/test_run_hygiene.py has more).
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_bad_yaml_config(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("bench: humaneval\nn: [1\n")
    r = run_cli("run", "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 2
    assert "invalid YAML" in r.stderr and "Traceback" not in r.stderr
    cfg.write_text("bench: humaneval\ntemprature: 0.2\n")
    r = run_cli("run", "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 2
    assert "did you mean 'temperature'" in r.stderr


def test_malformed_samples_line_is_named(tmp_path: Path) -> None:
    f = tmp_path / "s.jsonl"
    f.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "x"}) + "\n{broken\n" + "{}\n")
    r = run_cli("evaluate", str(f), "--ignore-incomplete", "--output-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert r.returncode == 2
    assert "s.jsonl:2: malformed JSON line" in r.stderr
    assert not (tmp_path / "r").exists()


def test_unknown_task_id_in_samples(tmp_path: Path) -> None:
    f = tmp_path / "s.jsonl"
    f.write_text(json.dumps({"task_id": "HumanEval/1000", "completion": "x"}) + "\n")
    r = run_cli("evaluate", str(f), "--output-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert r.returncode == 2
    assert "unknown task id 'HumanEval/1000'" in r.stderr
    assert not (tmp_path / "r").exists()


def test_list_does_not_import_torch(tmp_path: Path) -> None:
    r = run_cli("list", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "humaneval" in r.stdout and "reference" in r.stdout and "process" in r.stdout
    import subprocess
    import sys

    code = (
        "import sys, codegen_eval.cli as c\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(c.cli, ['list'])\n"
        "import codegen_eval.evaluate, codegen_eval.runner\n"
        "bad = [m for m in ('torch', 'transformers', 'docker', 'ray') if m in sys.modules]\n"
        "print(bad)\n"
    )
    from tests.conftest import REPO

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_nul_bytes_and_lone_surrogates_in_completions_are_data(tmp_path: Path) -> None:
    """A completion is whatever the model wrote: it runs (and fails to compile) and its record stays valid JSON."""
    completions = ["    return 1\u0000\ud800\n", "    return 1  # \ud800\n", "    return 1  # \u0000\n"]
    f = tmp_path / "s.jsonl"
    f.write_text("".join(json.dumps({"task_id": "HumanEval/0", "completion": c}) + "\n" for c in completions))
    out = tmp_path / "r"
    r = run_cli("evaluate", str(f), "--ignore-incomplete", "--output-dir", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    results = [json.loads(line) for line in (tmp_path / "s.jsonl_results.jsonl").read_text().splitlines()]
    assert [x["completion"] for x in results] == completions
    assert [x["passed"] for x in results] == [False] * 3
    assert all(x["result"].startswith("failed: ") for x in results)
    for name in ("samples.jsonl", "executions.jsonl"):
        lines = (out / name).read_text(encoding="utf-8").splitlines()
        assert len(lines) == 3
        records = [json.loads(line) for line in lines]  # valid JSON, lone surrogates included
    # Compiling fails on the NUL byte, and on the surrogate in code; in a comment the tokenizer never decodes it,
    # so that program runs and returns the wrong answer. Either way a normal outcome, never a pass.
    assert [x["outcome"] for x in sorted(records, key=lambda x: x["index"])] == ["error", "failed", "error"]


def test_evaluate_refuses_meaningless_limits(tmp_path: Path) -> None:
    f = tmp_path / "s.jsonl"
    f.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return 1\n"}) + "\n")
    for flag, value in (("--timeout", "nan"), ("--timeout", "inf"), ("--memory-mb", "-5")):
        r = run_cli("evaluate", str(f), "--ignore-incomplete", flag, value, "--output-dir", str(tmp_path / "r"))
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith(f"error: {flag} must be") and len(r.stderr.splitlines()) == 1, r.stderr
        assert not (tmp_path / "r").exists()  # nothing was started


# Runs the CLI as `python -c` with imports blocked: what a user without the hf extra sees (nothing uninstalled).
_WITHOUT_HF_EXTRA = (
    "import runpy, sys\n"
    "sys.modules['torch'] = None  # `import torch` now fails as if it were not installed\n"
    "runpy.run_module('codegen_eval', run_name='__main__', alter_sys=True)\n"
)


@pytest.mark.parametrize("model", ["smollm2-135m", "hf:{tmp}"])
def test_hf_without_its_extra_names_the_extra(tmp_path: Path, model: str) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    args = ["run", "--model", model.format(tmp=tmp_path), "--limit", "1", "--no-progress"]
    r = subprocess.run(
        [sys.executable, "-c", _WITHOUT_HF_EXTRA, *args, "--output-dir", str(tmp_path / "run")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr == (
        "error: backend 'hf' needs torch and transformers (torch is not installed): pip install 'codegen-eval[hf]'\n"
    )


def test_hf_model_that_is_a_file(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    r = run_cli("run", "--model", f"hf:{gguf}", "--no-progress", "--output-dir", str(tmp_path / "run"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        f"error: hf: '{gguf}' is a file, not a model folder; "
        f"for a GGUF file: --model hf:{tmp_path} -B gguf_file=model.gguf"
    )
