"""The openai ModelBackend: requests spread over worker threads, `n` split when a server ignores it, request bodies,
completions assembled from the replies."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from codegen_eval.backends.base import BackendContext, parse_options, throughput
from codegen_eval.backends.openai.client import Client, OpenAIOptions, _Fatal, _parse_url, _Rejected
from codegen_eval.backends.openai.probe import Slots, check_model, fit_concurrency, total_slots
from codegen_eval.errors import BackendError, UsageError
from codegen_eval.records import Completion, GenerationRequest, SampleMode

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    """One HTTP request's worth of work: `n` texts for `request`."""

    request: GenerationRequest
    n: int
    seed: int | None
    texts: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # this item failed
    # _Fatal: every item would fail, the run stops; any other exception is a bug, re-raised in the caller's thread
    stop: Exception | None = None


class OpenAIBackend:
    """Any server speaking the OpenAI API (`--model openai:NAME --base-url http://HOST:PORT/v1`), as docs/openai.md
    describes: the raw prompt to /completions (chat mode: messages to /chat/completions), the text kept untouched;
    a server that ignores `n` asked one sample per request (sample j with seed + j); failures as client.py's."""

    name = "openai"
    # The OpenAI API returns the text without the stop string that ended it (vLLM and TGI too, by default).
    keeps_stop_strings = False
    progress: Callable[[int], None] | None = None  # told how many sequences each finished job held (runner's bar)

    def __init__(self, model: str, options: Mapping[str, str], context: BackendContext | None = None) -> None:
        self.options = parse_options(OpenAIOptions, options, "openai")
        urls = [u.strip() for u in self.options.base_url.split(",") if u.strip()]
        if not urls and os.environ.get("OPENAI_BASE_URL"):
            urls = [os.environ["OPENAI_BASE_URL"]]
        if not urls:
            raise UsageError("backend 'openai' needs a server: --base-url http://HOST:PORT/v1 (repeatable)")
        self.endpoints = [_parse_url(u) for u in dict.fromkeys(urls)]
        self.model = model
        self.mode: SampleMode = "chat" if self.options.chat else "completion"
        self.path = "/chat/completions" if self.options.chat else "/completions"
        api_key = os.environ.get(self.options.api_key_env) or None
        self._client = Client(self.endpoints, self.path, self.options, api_key)
        self._lock = self._client.lock  # one lock for the client's state and the workers' cursor and counts
        self._split_n = False  # the server ignores n: ask one sample per request
        self.stats = self._client.stats  # http_requests and retries, counted by the client; then the items'
        self.stats.update({"failed_items": 0, "prompt_tokens": 0, "completion_tokens": 0})
        self.served: list[str] = []
        self.slots: dict[str, Slots | None] | None = None  # per endpoint; None: not probed (check_model=false)
        if self.options.check_model:
            self.served, self.slots = check_model(self._client, model)
        elif not model:
            raise UsageError("backend 'openai' needs a model name: --model openai:NAME")
        self.concurrency = fit_concurrency(self._client, self.slots, explicit="concurrency" in options)
        self._replies: list[tuple[float, int]] = []  # (seconds, completion tokens) of each reply
        self._generate_s = 0.0  # wall time inside generate()

    def _run_job(self, job: _Job) -> None:
        r, want = job.request, job.n
        while len(job.texts) < want:
            n = 1 if self._split_n else want - len(job.texts)
            body = request_body(self.model, self.options, r, n, _seed(job.seed, len(job.texts)))
            reply, url, seconds = self._client.call(body, r.key)
            texts = reply_texts(reply, self.options.chat, url)
            prompt_tokens, completion_tokens = reply_usage(reply)
            with self._lock:
                self._replies.append((seconds, completion_tokens))
            job.prompt_tokens += prompt_tokens
            job.completion_tokens += completion_tokens
            if not texts:
                raise _Fatal(f"malformed response from {url}: no choices")
            if len(texts) < n and not self._split_n:
                self._split_n = True
                log.warning("openai: %s gave %d choice(s) for n=%d; asking one sample per request", url, len(texts), n)
            job.texts.extend(texts[:n])

    def _worker(self, todo: Iterator[_Job]) -> None:
        abort = self._client.abort
        while not abort.is_set():
            with self._lock:
                job = next(todo, None)
            if job is None:
                return
            try:
                self._run_job(job)
                if self.progress is not None:
                    self.progress(job.n)
            except _Rejected as exc:
                job.error = str(exc)
            except Exception as exc:  # _Fatal or a bug: stop the others and let the caller raise it
                job.stop = exc
                abort.set()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        started = time.monotonic()
        groups: list[list[_Job]] = []  # each request's jobs
        for r in requests:
            if self._split_n and r.n > 1:
                groups.append([_Job(r, 1, _seed(r.sampling.seed, j)) for j in range(r.n)])
            else:
                groups.append([_Job(r, r.n, r.sampling.seed)])
        jobs = [job for group in groups for job in group]
        self._client.abort.clear()
        todo = iter(jobs)
        threads = [
            threading.Thread(target=self._worker, args=(todo,), daemon=True, name=f"openai-{i}")
            for i in range(min(self.concurrency, len(jobs)))
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)  # short joins keep Ctrl-C responsive
        except BaseException:
            self._client.abort.set()
            raise
        finally:
            self._generate_s += time.monotonic() - started
        stops = [j.stop for j in jobs if j.stop is not None]
        crash = next((e for e in stops if not isinstance(e, _Fatal)), None)
        if crash is not None:
            raise crash
        fatal = next((e for e in stops if str(e) not in ("", "aborted")), None)
        if fatal is not None:
            raise BackendError(f"openai: {fatal}")
        return self._completions(groups)

    def _completions(self, groups: list[list[_Job]]) -> list[Completion]:
        """One Completion per request from its jobs (an error if any of them failed); the counts added to stats."""
        out: list[Completion] = []
        for parts in groups:
            error = next((j.error for j in parts if j.error), None)
            prompt_tokens = sum(j.prompt_tokens for j in parts)
            completion_tokens = sum(j.completion_tokens for j in parts)
            with self._lock:
                self.stats["prompt_tokens"] += prompt_tokens
                self.stats["completion_tokens"] += completion_tokens
                self.stats["failed_items"] += error is not None
            if error is not None:
                out.append(Completion(texts=(), error=error, completion_tokens=completion_tokens))
            else:
                texts = tuple(t for j in parts for t in j.texts)
                out.append(Completion(texts, None, prompt_tokens, completion_tokens))
        return out

    def provenance(self) -> Mapping[str, str]:
        slots = self.slots or {}
        told = (f"{s.count} ({s.source})" if s else f"not reported by {base}" for base, s in slots.items())
        out = {
            "backend": "openai",
            "model": self.model,
            "base_urls": ",".join(ep.base for ep in self.endpoints),
            "endpoint": self.path,
            "mode": self.mode,
            "api_key_env": self.options.api_key_env,  # the variable's name; its value is never recorded
            "served_models": ",".join(self.served),
            "server_slots": "not probed (check_model=false)" if self.slots is None else "; ".join(told),
            "concurrency": str(self.concurrency),
        }
        if self.options.chat:
            out["paper_comparable"] = "false (chat mode: code extracted from an instruct model's reply)"
        return out

    def run_stats(self) -> dict[str, int | float | None]:
        """This backend's work so far: counts, throughput and the latency of the replies, for run.json."""
        with self._lock:
            out: dict[str, int | float | None] = dict(self.stats)
            replies = list(self._replies)
        out.update(concurrency=self.concurrency, server_slots=total_slots(self.slots), replies=len(replies))
        out.update(throughput(self.stats["completion_tokens"], self._generate_s))
        out.update(reply_stats(replies))
        return out

    def close(self) -> None:
        self._client.close()
        if self.stats["http_requests"]:
            log.info("openai: %s", ", ".join(f"{k} {v}" for k, v in self.stats.items()))


def request_body(model: str, options: OpenAIOptions, r: GenerationRequest, n: int, seed: int | None) -> dict[str, Any]:
    s = r.sampling
    body: dict[str, Any] = {"model": model, "max_tokens": r.max_new_tokens, "n": n, "temperature": s.temperature}
    body["top_p"] = s.top_p
    if s.top_k > 0:
        body["top_k"] = s.top_k  # not OpenAI's, but vLLM and others take it; strict servers reject it
    if seed is not None:
        body["seed"] = seed
    if options.chat:
        body["messages"] = [{"role": m.role, "content": m.content} for m in r.messages]
    else:
        body["prompt"] = r.prompt
        stop = list(r.stop)[: options.max_stop or None]
        if stop:
            body["stop"] = stop
    return body


def reply_texts(reply: Mapping[str, Any], chat: bool, url: str) -> list[str]:
    choices = reply.get("choices")
    if not isinstance(choices, list):
        raise _Fatal(f"malformed response from {url}: no 'choices' list")
    indexed: list[tuple[int, str]] = []
    for position, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise _Fatal(f"malformed response from {url}: a choice is not an object")
        if chat:
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
            text = "" if text is None and isinstance(message, dict) else text  # a reply with no text content
        else:
            text = choice.get("text")
        if not isinstance(text, str):
            raise _Fatal(f"malformed response from {url}: a choice has no text")
        index = choice.get("index", position)
        indexed.append((index if isinstance(index, int) else position, text))
    return [text for _, text in sorted(indexed, key=lambda p: p[0])]


def reply_usage(reply: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) a reply reports; 0 for what it does not."""
    usage = reply.get("usage")
    counts = [usage.get(key) if isinstance(usage, dict) else 0 for key in ("prompt_tokens", "completion_tokens")]
    prompt, completion = (c if isinstance(c, int) and not isinstance(c, bool) else 0 for c in counts)
    return prompt, completion


def _seed(seed: int | None, sample: int) -> int | None:
    """The seed of a request whose texts start at sample index `sample` (seed + j, kept within 31 bits)."""
    return None if seed is None else (seed + sample) & 0x7FFFFFFF


def _quantile(ordered: Sequence[float], q: float, digits: int) -> float | None:
    """The q-quantile of sorted values, interpolating between the two nearest (numpy's default); None if empty."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return round(value, digits)


def reply_stats(replies: Sequence[tuple[float, int]]) -> dict[str, float | None]:
    """Latency of the replies (seconds, quantiles) and one reply's decoding speed as its client saw it (prompt
    processing and queueing included), from (seconds, completion tokens) per reply."""
    latencies = sorted(seconds for seconds, _ in replies)
    rates = sorted(tokens / seconds for seconds, tokens in replies if seconds > 0 and tokens > 0)
    return {
        "latency_mean_s": round(sum(latencies) / len(latencies), 4) if latencies else None,
        "latency_p50_s": _quantile(latencies, 0.5, 4),
        "latency_p95_s": _quantile(latencies, 0.95, 4),
        "latency_max_s": round(latencies[-1], 4) if latencies else None,
        "reply_tokens_per_s_p50": _quantile(rates, 0.5, 2),
    }
