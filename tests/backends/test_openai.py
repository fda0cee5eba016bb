"""The openai backend against a real OpenAI-compatible server (`transformers serve`, tiny CodeGen) on 127.0.0.1,
directly and through a fault-injecting proxy."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from codegen_eval.backends.base import BackendContext
from codegen_eval.backends.openai import OpenAIBackend
from codegen_eval.backends.openai.client import _retry_after
from codegen_eval.errors import BackendError, UsageError
from codegen_eval.records import ChatMessage, GenerationRequest, SamplingParams
from tests.openai_server import Fault, FaultProxy, Seen, TransformersServer, faults, free_port

CTX = BackendContext()
GREEDY = SamplingParams(temperature=0.0)
PROMPTS = (
    'def add(a, b):\n    """Return a + b."""\n',
    "import os\n\ndef list_files(path):\n",
    "class Stack:\n    def __init__(self):\n",
    "def fib(n):\n    if n < 2:\n        return n\n",
)


def _backend(url: str, model: Path | str, **options: object) -> OpenAIBackend:
    opts = {"base_url": url, "backoff": "0.05", "max_backoff": "0.2", **{k: str(v) for k, v in options.items()}}
    return OpenAIBackend(str(model), opts, CTX)


def _req(prompt: str, key: str = "k", n: int = 1, tokens: int = 12, **kw: object) -> GenerationRequest:
    return GenerationRequest(key=key, prompt=prompt, max_new_tokens=tokens, n=n, **kw)  # type: ignore[arg-type]


# -- options and start-up checks (bad input: one clear error) -----------------------------------------------


def test_options_are_typed_and_checked() -> None:
    with pytest.raises(UsageError, match="has no option 'concurency'"):
        OpenAIBackend("m", {"base_url": "http://127.0.0.1:1/v1", "concurency": "4"}, CTX)
    with pytest.raises(UsageError, match="cannot read 'many' as"):
        OpenAIBackend("m", {"base_url": "http://127.0.0.1:1/v1", "concurrency": "many"}, CTX)
    with pytest.raises(UsageError, match="concurrency must be at least 1"):
        OpenAIBackend("m", {"base_url": "http://127.0.0.1:1/v1", "concurrency": "0"}, CTX)
    with pytest.raises(UsageError, match="is not http"):
        OpenAIBackend("m", {"base_url": "ftp://127.0.0.1/v1"}, CTX)


def test_needs_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UsageError, match="needs a server: --base-url"):
        OpenAIBackend("m", {}, CTX)


def test_unreachable_server() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(BackendError, match=f"cannot reach the server: http://127.0.0.1:{port}/v1: connection refused"):
        _backend(f"http://127.0.0.1:{port}/v1", "m")


def test_wrong_model_name_did_you_mean(openai_server: TransformersServer, served_model: Path) -> None:
    typo = str(served_model)[:-1] + "x"
    with pytest.raises(BackendError, match=f"model '{typo}' is not served .*did you mean '{served_model}'"):
        _backend(openai_server.base_url, typo)
    with pytest.raises(UsageError, match=f"needs a model name: --model openai:NAME .*{served_model}"):
        _backend(openai_server.base_url, "")


def test_missing_v1_in_base_url_is_explained(openai_server: TransformersServer, served_model: Path) -> None:
    with pytest.raises(BackendError, match=r"not found \(404\); did you mean http://127.0.0.1:\d+/v1\?"):
        _backend(f"http://127.0.0.1:{openai_server.port}", served_model)


def test_retry_after_header_forms() -> None:
    from email.utils import formatdate

    assert _retry_after("2") == 2.0
    assert _retry_after("-3") == 0.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    in_a_minute = _retry_after(formatdate(time.time() + 60, usegmt=True))
    assert in_a_minute is not None and 55 < in_a_minute <= 60
    assert _retry_after("86400") == 600.0  # capped


# -- generation ---------------------------------------------------------------------------------------------


def test_completions_with_token_counts(openai_server: TransformersServer, served_model: Path) -> None:
    backend = _backend(openai_server.base_url, served_model)
    assert backend.mode == "completion"
    out = backend.generate([_req(p, key=f"p{i}", sampling=GREEDY) for i, p in enumerate(PROMPTS)])
    assert [c.error for c in out] == [None] * len(PROMPTS)
    assert all(len(c.texts) == 1 and c.texts[0] for c in out)
    assert all(0 < c.completion_tokens <= 12 and c.prompt_tokens > 0 for c in out)
    # Greedy decoding is deterministic: the same prompts again give the same texts.
    again = backend.generate([_req(p, key=f"p{i}", sampling=GREEDY) for i, p in enumerate(PROMPTS)])
    assert [c.texts for c in again] == [c.texts for c in out]
    prov = backend.provenance()
    assert prov["endpoint"] == "/completions" and prov["served_models"] == str(served_model)
    backend.close()


def test_greedy_parity_with_hf_backend(openai_server: TransformersServer, served_model: Path) -> None:
    """Same tiny model, same prompts, greedy, same stop strings: the server and the hf backend agree exactly."""
    from codegen_eval.backends.hf import HFBackend
    from codegen_eval.benchmarks.humaneval import STOP_SEQUENCES

    requests = [
        _req(p, key=f"p{i}", tokens=24 + 8 * i, sampling=GREEDY, stop=STOP_SEQUENCES) for i, p in enumerate(PROMPTS)
    ]
    served = _backend(openai_server.base_url, served_model).generate(requests)
    hf = HFBackend(str(served_model), {"device": "cpu", "dtype": "fp32"}, CTX)
    try:
        local = hf.generate(requests)
    finally:
        hf.close()
    assert [c.error for c in served] == [None] * len(requests)
    assert [c.texts for c in served] == [c.texts for c in local]
    assert [c.completion_tokens for c in served] == [c.completion_tokens for c in local]


def test_server_ignoring_n_is_detected_and_samples_differ(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy
) -> None:
    backend = _backend(fault_proxy.base_url, served_model)
    sampling = SamplingParams(temperature=1.0, top_p=1.0, seed=11)
    [c] = backend.generate([_req(PROMPTS[0], n=3, tokens=16, sampling=sampling)])
    assert c.error is None and len(c.texts) == 3
    assert len(set(c.texts)) == 3  # one request per sample, seeds 11, 12, 13
    assert [p.body["n"] for p in fault_proxy.posts() if p.body] == [3, 1, 1]
    assert [p.body["seed"] for p in fault_proxy.posts() if p.body] == [11, 12, 13]
    # Known now: the next request with n=2 goes out as two requests of n=1 at once.
    [c2] = backend.generate([_req(PROMPTS[1], n=2, tokens=8, sampling=sampling)])
    assert len(c2.texts) == 2 and [p.body["n"] for p in fault_proxy.posts()[3:] if p.body] == [1, 1]


def test_chat_mode(openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy) -> None:
    backend = _backend(fault_proxy.base_url, served_model, chat="true")
    assert backend.mode == "chat"
    messages = (ChatMessage("system", "Answer with code."), ChatMessage("user", "Write add(a, b)."))
    [c] = backend.generate([GenerationRequest("chat", "", 10, messages=messages, sampling=GREEDY)])
    assert c.error is None and len(c.texts) == 1 and c.completion_tokens > 0
    [post] = fault_proxy.posts()
    assert post.path == "/v1/chat/completions"
    assert post.body is not None and post.body["messages"] == [
        {"role": "system", "content": "Answer with code."},
        {"role": "user", "content": "Write add(a, b)."},
    ]
    assert "prompt" not in post.body and "stop" not in post.body
    assert backend.provenance()["paper_comparable"].startswith("false")


def test_request_body_and_api_key(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY_VAR", "sk-test-sentinel-1234")
    backend = _backend(fault_proxy.base_url, served_model, api_key_env="MY_KEY_VAR", max_stop=2)
    sampling = SamplingParams(temperature=0.0, top_p=0.95, seed=5)
    [c] = backend.generate([_req("x = ", tokens=7, sampling=sampling, stop=("\n#", "\ndef", "\nclass"))])
    assert c.error is None
    # GET /v1/models, the slot probes (/props, /slots: transformers serve has neither), then the request.
    assert [(s.method, s.path) for s in fault_proxy.seen] == [
        ("GET", "/v1/models"),
        ("GET", "/props"),
        ("GET", "/slots"),
        ("POST", "/v1/completions"),
    ]
    assert all(s.headers["Authorization"] == "Bearer sk-test-sentinel-1234" for s in fault_proxy.seen)
    post = fault_proxy.seen[-1]
    assert post.body == {
        "model": str(served_model),
        "max_tokens": 7,
        "n": 1,
        "temperature": 0.0,
        "top_p": 0.95,
        "seed": 5,
        "prompt": "x = ",
        "stop": ["\n#", "\ndef"],
    }
    assert "sk-test-sentinel" not in json.dumps(dict(backend.provenance()))


def test_concurrency_limit(openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy) -> None:
    # The first requests wait at the proxy until 4 are in flight, or 1 s: time enough for a 4th to arrive if the
    # backend sent more than 3 at once.
    fault_proxy.state.hold_first, fault_proxy.state.hold_timeout = 4, 1.0
    backend = _backend(fault_proxy.base_url, served_model, concurrency=3)
    out = backend.generate([_req(f"v{i} = ", key=str(i), tokens=4, sampling=GREEDY) for i in range(9)])
    assert all(c.error is None for c in out)
    assert len(fault_proxy.posts()) == 9
    assert fault_proxy.state.max_in_flight == 3


# -- server slots (llama.cpp) and per-run stats ---------------------------------------------------------------


def test_single_slot_server_gets_one_request_at_a_time(
    openai_server: TransformersServer,
    served_model: Path,
    fault_proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """llama.cpp's /props says total_slots=1: the default concurrency (16) drops to 1, with one warning."""
    fault_proxy.set_props({"total_slots": 1, "default_generation_settings": {"n_ctx": 512}})
    # The first requests wait at the proxy until 2 are in flight, or 0.5 s: a second would arrive if sent.
    fault_proxy.state.hold_first, fault_proxy.state.hold_timeout = 2, 0.5
    with caplog.at_level("WARNING", logger="codegen_eval.backends.openai"):
        backend = _backend(fault_proxy.base_url, served_model)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"openai: the server works on 1 request at a time (http://127.0.0.1:{fault_proxy.port}/props total_slots); "
        "sending 1 at a time, not 16 (more would only queue there, their wait counting against the timeout, and "
        "defeat its prompt cache; -B concurrency=N overrides)"
    ]
    assert backend.concurrency == 1
    out = backend.generate([_req(f"v{i} = ", key=str(i), tokens=4, sampling=GREEDY) for i in range(4)])
    assert all(c.error is None for c in out)
    assert fault_proxy.state.max_in_flight == 1
    prov = backend.provenance()
    assert prov["server_slots"] == f"1 (http://127.0.0.1:{fault_proxy.port}/props total_slots)"
    assert prov["concurrency"] == "1"
    stats = backend.run_stats()
    assert stats["concurrency"] == 1 and stats["server_slots"] == 1


def test_explicit_concurrency_is_kept_with_a_warning(
    openai_server: TransformersServer,
    served_model: Path,
    fault_proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fault_proxy.set_props({"total_slots": 2})
    with caplog.at_level("WARNING", logger="codegen_eval.backends.openai"):
        backend = _backend(fault_proxy.base_url, served_model, concurrency=4, timeout=60)
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning.startswith("openai: the server works on 2 requests at a time (")
    assert "but -B concurrency=4 sends 4: the rest queue there, their wait counting against -B timeout=60s" in warning
    assert backend.concurrency == 4 and backend.provenance()["concurrency"] == "4"


@pytest.mark.parametrize(
    ("props", "concurrency", "expected"),
    [
        ({"total_slots": 32}, None, 16),  # enough slots: as configured
        ({"total_slots": 4}, 2, 2),  # fewer requests than slots: as configured
        (None, None, 16),  # transformers serve (vLLM, TGI alike): no /props, nothing known, as configured
        ({"total_slots": "many"}, None, 16),  # not a count: ignored
    ],
)
def test_concurrency_is_left_alone_when_slots_suffice_or_are_unknown(
    openai_server: TransformersServer,
    served_model: Path,
    fault_proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
    props: dict[str, object] | None,
    concurrency: int | None,
    expected: int,
) -> None:
    fault_proxy.set_props(props)
    options = {} if concurrency is None else {"concurrency": concurrency}
    with caplog.at_level("WARNING", logger="codegen_eval.backends.openai"):
        backend = _backend(fault_proxy.base_url, served_model, **options)
    assert backend.concurrency == expected
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []
    told = backend.provenance()["server_slots"]
    if props is None or not isinstance(props["total_slots"], int):
        assert told == f"not reported by {fault_proxy.base_url}"
    else:
        assert told.startswith(f"{props['total_slots']} (")


def test_slots_of_several_servers_add_up(openai_server: TransformersServer, served_model: Path) -> None:
    a, b = FaultProxy(f"http://127.0.0.1:{openai_server.port}"), FaultProxy(f"http://127.0.0.1:{openai_server.port}")
    try:
        a.set_props({"total_slots": 1})
        b.set_props({"total_slots": 2})
        assert _backend(f"{a.base_url},{b.base_url}", served_model).concurrency == 3
        b.set_props(None)  # one server does not say: the total is unknown, concurrency stays as configured
        assert _backend(f"{a.base_url},{b.base_url}", served_model).concurrency == 16
    finally:
        a.close()
        b.close()


def test_llama_cpp_slots_endpoint_and_llama_cpp_python(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy
) -> None:
    slots = json.dumps([{"id": 0, "n_ctx": 512}, {"id": 1, "n_ctx": 512}]).encode()
    fault_proxy.set_rule(lambda i, s: Fault(status=200, body=slots) if s.path == "/slots" else None)
    backend = _backend(fault_proxy.base_url, served_model)
    assert backend.concurrency == 2
    assert backend.provenance()["server_slots"] == f"2 (http://127.0.0.1:{fault_proxy.port}/slots)"
    # llama-cpp-python: no /props or /slots, but its /models entries give it away; it serves one at a time.
    entry = {"id": str(served_model), "object": "model", "owned_by": "me", "permissions": []}
    models = {"object": "list", "data": [entry]}
    body = json.dumps(models).encode()
    fault_proxy.set_rule(lambda i, s: Fault(status=200, body=body) if s.path == "/v1/models" else None)
    backend = _backend(fault_proxy.base_url, served_model)
    assert backend.concurrency == 1
    assert "llama-cpp-python" in backend.provenance()["server_slots"]


def test_no_probe_without_check_model(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy
) -> None:
    fault_proxy.set_props({"total_slots": 1})
    backend = _backend(fault_proxy.base_url, served_model, check_model="false")
    assert backend.concurrency == 16 and fault_proxy.seen == []
    assert backend.provenance()["server_slots"] == "not probed (check_model=false)"


def test_run_stats_latency_and_throughput(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy
) -> None:
    backend = _backend(fault_proxy.base_url, served_model, concurrency=2)
    empty = backend.run_stats()
    assert empty["replies"] == 0 and empty["latency_p50_s"] is None and empty["completion_tokens_per_s"] is None
    # One reply is slowed by 0.6 s at the proxy: it is the maximum, and above the median.
    fault_proxy.set_rule(faults(Fault(delay=0.6)))
    out = backend.generate([_req(f"v{i} = ", key=str(i), tokens=6, sampling=GREEDY) for i in range(5)])
    assert all(c.error is None for c in out)
    stats = backend.run_stats()
    assert stats["replies"] == 5 and stats["http_requests"] == 5 and stats["retries"] == 0
    assert stats["completion_tokens"] == sum(c.completion_tokens for c in out) > 0
    mean, p50, p95, top = (stats[k] for k in ("latency_mean_s", "latency_p50_s", "latency_p95_s", "latency_max_s"))
    assert isinstance(mean, float) and isinstance(p50, float) and isinstance(p95, float) and isinstance(top, float)
    assert 0 < p50 <= p95 <= top and top >= 0.6 > p50 and p50 <= mean <= top
    generate_s, rate = stats["generate_s"], stats["completion_tokens_per_s"]
    assert isinstance(generate_s, float) and generate_s >= 0.6
    assert rate == pytest.approx(stats["completion_tokens"] / generate_s, rel=0.01)
    assert isinstance(stats["reply_tokens_per_s_p50"], float) and stats["reply_tokens_per_s_p50"] > 0
    json.dumps(stats)  # recorded in run.json as it is


# -- faults: retries, backoff, routing ----------------------------------------------------------------------


def test_retries_500_and_dropped_connections(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy
) -> None:
    fault_proxy.set_rule(faults(Fault(status=500), Fault(drop=True), Fault(status=503)))
    backend = _backend(fault_proxy.base_url, served_model, retries=3)
    [c] = backend.generate([_req(PROMPTS[0], sampling=GREEDY)])
    assert c.error is None and c.texts[0]
    assert [s.status for s in fault_proxy.posts()] == [500, None, 503, 200]
    # The drop came on a kept-alive connection, which is retried at once on a fresh one without counting
    # (a server may close an idle connection at any time).
    assert backend.stats["retries"] == 2 and backend.stats["http_requests"] == 3


def test_429_waits_for_retry_after(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy
) -> None:
    fault_proxy.set_rule(faults(Fault(status=429, headers=(("Retry-After", "1"),))))
    backend = _backend(fault_proxy.base_url, served_model, retries=2)  # its own backoff is 0.05 s
    [c] = backend.generate([_req(PROMPTS[0], sampling=GREEDY)])
    assert c.error is None
    first, second = fault_proxy.posts()
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95  # waited as the server asked, not its own 0.05 s


def test_slow_response_times_out_then_retries(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy
) -> None:
    fault_proxy.set_rule(faults(Fault(delay=3.0)))
    backend = _backend(fault_proxy.base_url, served_model, timeout=0.5, retries=2)
    [c] = backend.generate([_req(PROMPTS[0], sampling=GREEDY)])
    assert c.error is None and len(fault_proxy.posts()) == 2


def test_persistent_failure_is_an_item_error_and_the_rest_goes_on(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy
) -> None:
    def rule(index: int, seen: Seen) -> Fault | None:
        return Fault(status=500) if seen.body and seen.body.get("prompt") == "doomed" else None

    fault_proxy.set_rule(rule)
    backend = _backend(fault_proxy.base_url, served_model, retries=2, concurrency=1)
    out = backend.generate([_req("a = "), _req("doomed"), _req("b = ")])
    assert out[0].error is None and out[2].error is None
    assert out[1].texts == () and out[1].error is not None
    assert "HTTP 500" in out[1].error and "after 3 attempts" in out[1].error
    # Rejected requests (400: e.g. a prompt too long) are not retried.
    fault_proxy.set_rule(lambda i, s: Fault(status=400, body=b'{"detail": "too long"}') if s.method == "POST" else None)
    before = len(fault_proxy.posts())
    [bad] = backend.generate([_req("c = ")])
    assert bad.error is not None and "HTTP 400" in bad.error and "too long" in bad.error
    assert len(fault_proxy.posts()) == before + 1


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault(status=200, body=b"<html>oops</html>"), "malformed response from .*: not JSON"),
        (Fault(status=200, body=b'{"id": "x"}'), "malformed response from .*: no 'choices' list"),
        (Fault(status=200, body=b'{"choices": [{"index": 0}]}'), "malformed response from .*: a choice has no text"),
        (Fault(status=401, body=b'{"error": {"message": "bad key"}}'), r"401 \(bad key\); is \$OPENAI_API_KEY"),
        (Fault(status=404), r"404 .*does the server offer /completions\?"),
    ],
)
def test_failures_no_retry_can_fix_stop_the_run(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy, fault: Fault, message: str
) -> None:
    fault_proxy.set_rule(lambda i, s: fault if s.method == "POST" else None)
    backend = _backend(fault_proxy.base_url, served_model)
    with pytest.raises(BackendError, match=message):
        backend.generate([_req("a = "), _req("b = ")])


def test_requests_spread_over_endpoints_and_route_around_a_dead_one(
    openai_server: TransformersServer, served_model: Path
) -> None:
    a, b = FaultProxy(f"http://127.0.0.1:{openai_server.port}"), FaultProxy(f"http://127.0.0.1:{openai_server.port}")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    try:
        backend = _backend(f"{a.base_url},{dead},{b.base_url}", served_model, concurrency=2)
        out = backend.generate([_req(f"v{i} = ", key=str(i), tokens=4, sampling=GREEDY) for i in range(8)])
        assert all(c.error is None for c in out)
        assert len(a.posts()) > 0 and len(b.posts()) > 0 and len(a.posts()) + len(b.posts()) == 8
    finally:
        a.close()
        b.close()


def test_dead_server_items_fail_fast_once_retries_are_spent(
    openai_server: TransformersServer, served_model: Path, fault_proxy: FaultProxy
) -> None:
    """After one request has spent its retries, the others try once each: a dead server ends a run quickly."""
    backend = _backend(fault_proxy.base_url, served_model, retries=3, concurrency=1)
    fault_proxy.close()  # the endpoint now refuses connections
    out = backend.generate([_req(f"v{i} = ", key=str(i)) for i in range(6)])
    assert all(c.error is not None and "connection refused" in c.error for c in out)
    assert "after 4 attempts" in str(out[0].error)
    assert all("after 1 attempt)" in str(c.error) for c in out[1:])
    assert backend.stats["http_requests"] == 4 + 5
    # One success ends the fail-fast mode.
    proxy = FaultProxy(f"http://127.0.0.1:{openai_server.port}")
    try:
        backend.endpoints[0].port = proxy.port
        backend.endpoints[0].down_until = 0.0
        assert backend.generate([_req("w = ")])[0].error is None
        assert not backend._client.degraded
    finally:
        proxy.close()
