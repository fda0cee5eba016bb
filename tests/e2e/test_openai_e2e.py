"""The CLI through the openai backend against a real server (`transformers serve`, tiny CodeGen) on 127.0.0.1:
HumanEval and MTPB, a server killed mid-run, resume, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.openai_server import Fault, FaultProxy, TransformersServer, free_port

SENTINEL = "sk-e2e-sentinel-5f3a9c"


def _samples(run: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]


def _latest(run: Path) -> dict[tuple[str, int], dict[str, object]]:
    return {(str(s["problem_id"]), int(str(s["index"]))): s for s in _samples(run)}


def _common(model: Path, url: str, *extra: str) -> list[str]:
    return ["--model", f"openai:{model}", "--base-url", url, "--no-progress", *extra]


@pytest.fixture
def restartable(openai_server: TransformersServer) -> Iterator[TransformersServer]:
    """The session's server, for a test that kills it: it is running again afterwards, on the same port."""
    try:
        yield openai_server
    finally:
        if openai_server.proc is None or openai_server.proc.poll() is not None:
            openai_server.start()


def test_humaneval_generate_through_the_server(
    openai_server: TransformersServer, served_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = _common(served_model, openai_server.base_url, "--limit", "3", "-n", "2", "--temperature", "0.8")
    r = run_cli(
        "-v",
        "generate",
        "--bench",
        "humaneval",
        *args,
        "--max-new-tokens",
        "24",
        "--output-dir",
        str(out),
        env={"OPENAI_API_KEY": SENTINEL},
    )
    assert r.returncode == 0, r.stderr
    samples = _samples(out)
    assert len(samples) == 6 and all(s["error"] is None and s["turns"] for s in samples)
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "generated"
    assert meta["backend"]["backend"] == "openai" and meta["backend"]["endpoint"] == "/completions"
    assert meta["config"]["backend_options"] == {"base_url": openai_server.base_url}
    assert meta["sample_mode"] == "completion" and "paper_comparable" not in meta
    # transformers serve reports no slots (it batches): the default concurrency stands, and how it went is recorded.
    assert meta["backend"]["server_slots"] == f"not reported by {openai_server.base_url}"
    assert meta["backend"]["concurrency"] == "16"
    stats = meta["backend_stats"]
    assert stats["replies"] == stats["http_requests"] == 6 and stats["completion_tokens"] > 0
    assert 0 < stats["latency_p50_s"] <= stats["latency_p95_s"] <= stats["latency_max_s"]
    assert stats["latency_mean_s"] > 0 and stats["completion_tokens_per_s"] > 0
    # The key is sent (tests/backends checks the header) but never recorded or logged.
    for path in out.iterdir():
        assert SENTINEL not in path.read_text(), path
    assert SENTINEL not in r.stderr + r.stdout


def test_chat_mode_is_recorded_as_not_paper_comparable(
    openai_server: TransformersServer, served_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    args = _common(served_model, openai_server.base_url, "--limit", "2", "--max-new-tokens", "16", "-B", "chat=true")
    r = run_cli("generate", "--bench", "humaneval", *args, "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "run.json").read_text())
    assert meta["sample_mode"] == "chat" and meta["paper_comparable"] is False
    assert meta["backend"]["endpoint"] == "/chat/completions"
    samples = _samples(out)
    assert len(samples) == 2 and all(s["mode"] == "chat" and s["error"] is None for s in samples)


def test_humaneval_run_end_to_end(openai_server: TransformersServer, served_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = _common(served_model, openai_server.base_url, "--limit", "4", "--max-new-tokens", "24")
    r = run_cli("run", "--bench", "humaneval", *args, "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples_judged"] == 4
    # A random tiny model writes gibberish: every program is judged, none passes, none is a generation error.
    assert sum(summary["outcomes"].values()) == 4 and summary["outcomes"].get("passed", 0) == 0
    assert "generation_error" not in summary["outcomes"]
    assert json.loads((out / "run.json").read_text())["status"] == "completed"


def test_mtpb_multi_turn_through_the_server(
    openai_server: TransformersServer, served_model: Path, tmp_path: Path, data_dir: Path
) -> None:
    proxy = FaultProxy(f"http://127.0.0.1:{openai_server.port}")  # no faults: it records the prompts
    try:
        out = tmp_path / "run"
        args = _common(served_model, proxy.base_url, "--limit", "1", "--max-new-tokens", "16")
        r = run_cli("run", "--bench", "mtpb", *args, "--data-dir", str(data_dir), "--output-dir", str(out))
        assert r.returncode == 0, r.stderr
        posts = proxy.posts()
    finally:
        proxy.close()
    samples = _samples(out)
    assert len(samples) == 5 and all(s["error"] is None for s in samples)  # problem 1: one sample per test case
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples_judged"] == 5 and "generation_error" not in summary["outcomes"]
    # Every turn's prompt was the whole history so far: the benchmark's rendering of the earlier turns' outputs.
    from codegen_eval.benchmarks.base import BenchmarkSettings
    from codegen_eval.benchmarks.mtpb import MTPB
    from codegen_eval.records import TurnOutput

    bench = MTPB(BenchmarkSettings(data_dir=data_dir))
    problems = {p.id: p for p in bench.load()}
    expected: list[str] = []
    for s in samples:
        problem = problems[str(s["problem_id"])]
        history = [TurnOutput(t["raw"], t["text"]) for t in s["turns"]]  # type: ignore[attr-defined]
        assert len(history) == len(problem.turns) >= 3
        prompts = [bench.render(problem, turn, history[:turn]) for turn in range(len(history))]
        for turn in range(len(history) - 1):  # each prompt extends the last one by what was kept of its reply
            assert prompts[turn + 1].startswith(prompts[turn] + history[turn].text)
        expected += prompts
    assert sorted(str(p.body["prompt"]) for p in posts if p.body) == sorted(expected)
    # The server strips the stop string that ended a text, so only the hints that are safe to strip were sent.
    stops = {s for p in posts if p.body for s in p.body.get("stop", [])}
    assert "\n\n\n" in stops and "\n#" not in stops and "\n'''" not in stops

    # Resuming against the server's own address (the proxy is gone) with other retry settings is the same run.
    again = run_cli(
        "run", "--bench", "mtpb", *_common(served_model, openai_server.base_url, "--limit", "1"),
        "--max-new-tokens", "16", "-B", "retries=2", "--data-dir", str(data_dir), "--resume", str(out),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert len(_samples(out)) == 5  # nothing generated again
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["backend_options"]["base_url"] == openai_server.base_url


@pytest.mark.slow
def test_server_killed_mid_run_then_resume(restartable: TransformersServer, served_model: Path, tmp_path: Path) -> None:
    """Kill -9 the server mid-run: failed items are recorded (and scored generation_error), the run ends normally;
    after a restart, resume asks only for those, executes them, and the summary has no generation error left."""
    config = tmp_path / "c.yaml"
    config.write_text("gen_chunk: 1\n")  # one request at a time, each sample appended as it finishes
    out = tmp_path / "run"
    args = _common(served_model, restartable.base_url, "--limit", "20", "--max-new-tokens", "32")
    args += ["-B", "retries=1", "-B", "backoff=0.05", "-B", "concurrency=1", "--config", str(config)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "codegen_eval", "run", "--bench", "humaneval", *args, "--output-dir", str(out)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, served = time.monotonic() + 120, restartable.completions_served()
    while restartable.completions_served() < served + 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    restartable.kill()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    first = _latest(out)
    failed = {k for k, s in first.items() if s["error"] is not None}
    assert len(first) == 20 and 0 < len(failed) < 20, "the kill must land mid-run"
    assert all("connection refused" in str(first[k]["error"]) or "closed" in str(first[k]["error"]) for k in failed)
    assert "could not be generated" in stderr and f"--resume {out}" in stderr
    assert json.loads((out / "run.json").read_text())["status"] == "completed"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples_judged"] == 20 and summary["outcomes"]["generation_error"] == len(failed)

    restartable.start()
    r = run_cli("run", "--resume", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    after = _latest(out)
    assert len(after) == 20 and all(s["error"] is None for s in after.values())
    assert restartable.completions_served() == len(failed)  # nothing generated twice
    assert all(after[k] == first[k] for k in first if k not in failed)
    assert len(_samples(out)) == 20 + len(failed)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples_judged"] == 20 and "generation_error" not in summary["outcomes"]
    executions = (out / "executions.jsonl").read_text().splitlines()
    assert len(executions) == 20 + len(failed)  # the failed items judged once more, nothing else


@pytest.mark.slow
def test_server_restarted_within_the_retry_window(
    restartable: TransformersServer, served_model: Path, tmp_path: Path
) -> None:
    """With retries to spare, a run waits for a restarted server and loses nothing."""
    config = tmp_path / "c.yaml"
    config.write_text("gen_chunk: 1\n")
    out = tmp_path / "run"
    args = _common(served_model, restartable.base_url, "--limit", "12", "--max-new-tokens", "32")
    args += ["-B", "retries=400", "-B", "backoff=0.1", "-B", "max_backoff=0.3", "-B", "concurrency=2"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codegen_eval",
            "generate",
            "--bench",
            "humaneval",
            *args,
            "--config",
            str(config),
            "--output-dir",
            str(out),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, served = time.monotonic() + 120, restartable.completions_served()
    while restartable.completions_served() < served + 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    restartable.kill()
    time.sleep(0.5)
    assert proc.poll() is None, "the run must still be waiting for the server"
    restartable.start()
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    samples = _samples(out)
    assert len(samples) == 12 and all(s["error"] is None for s in samples)


# -- bad input: one clear line, exit 2, nothing lost --------------------------------------------------------


def _one_line_exit_2(r: subprocess.CompletedProcess[str], message: str) -> None:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr


def test_unreachable_urls(tmp_path: Path) -> None:
    a, b = (f"http://127.0.0.1:{free_port()}/v1" for _ in range(2))
    args = _common(Path("tiny"), a, "--base-url", b, "--limit", "1")
    r = run_cli("generate", *args, "--output-dir", str(tmp_path / "r"))
    _one_line_exit_2(r, f"error: openai: cannot reach the server: {a}: connection refused; {b}: connection refused")
    assert not (tmp_path / "r").exists()  # failed before any work: no run directory left behind


def test_wrong_model_name(openai_server: TransformersServer, served_model: Path, tmp_path: Path) -> None:
    wrong = str(served_model) + "2"
    r = run_cli(
        "generate", *_common(Path(wrong), openai_server.base_url, "--limit", "1"), "--output-dir", str(tmp_path / "r")
    )
    _one_line_exit_2(r, f"model '{wrong}' is not served at {openai_server.base_url} (did you mean '{served_model}'?")


def test_unknown_backend_option(openai_server: TransformersServer, served_model: Path, tmp_path: Path) -> None:
    r = run_cli(
        "generate", *_common(served_model, openai_server.base_url, "-B", "retry=3"), "--output-dir", str(tmp_path / "r")
    )
    _one_line_exit_2(r, "backend 'openai' has no option 'retry'")


def test_malformed_response_stops_the_run_and_resume_finishes_it(
    openai_server: TransformersServer, served_model: Path, tmp_path: Path
) -> None:
    proxy = FaultProxy(f"http://127.0.0.1:{openai_server.port}")
    try:
        broken = Fault(status=200, body=b"<html>gateway says hi</html>")
        proxy.set_rule(lambda i, s: broken if s.method == "POST" and len(proxy.posts()) > 3 else None)
        config = tmp_path / "c.yaml"
        config.write_text("gen_chunk: 1\n")
        out = tmp_path / "run"
        args = _common(served_model, proxy.base_url, "--limit", "6", "--max-new-tokens", "16", "--config", str(config))
        r = run_cli("generate", "--bench", "humaneval", *args, "-B", "concurrency=1", "--output-dir", str(out))
        _one_line_exit_2(r, "malformed response from " + proxy.base_url + "/completions: not JSON")
        kept = _latest(out)
        assert len(kept) == 3 and all(s["error"] is None for s in kept.values())  # nothing lost
        meta = json.loads((out / "run.json").read_text())
        assert meta["status"] == "failed" and "malformed" in meta["error"]

        proxy.set_rule(None)
        before = len(proxy.posts())
        r = run_cli("generate", "--resume", str(out), "--no-progress")
        assert r.returncode == 0, r.stderr
        assert len(proxy.posts()) - before == 3  # only the missing samples
        assert len(_latest(out)) == 6 and len(_samples(out)) == 6
    finally:
        proxy.close()
