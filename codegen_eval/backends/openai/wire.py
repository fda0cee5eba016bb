"""The openai backend's JSON: request bodies from a GenerationRequest, texts and token counts from a reply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from codegen_eval.backends.openai.client import _Fatal
from codegen_eval.backends.openai.options import OpenAIOptions
from codegen_eval.records import GenerationRequest


def request_body(model: str, options: OpenAIOptions, r: GenerationRequest, n: int, seed: int | None) -> dict[str, Any]:
    s = r.sampling
    body: dict[str, Any] = {"model": model, "max_tokens": r.max_new_tokens, "n": n}
    body["temperature"] = s.temperature
    body["top_p"] = s.top_p
    if s.top_k > 0:
        body["top_k"] = s.top_k  # not OpenAI's, but vLLM and others take it; strict servers reject it
    if seed is not None:
        body["seed"] = seed
    if options.chat:
        body["messages"] = [{"role": m.role, "content": m.content} for m in r.messages]
    else:
        body["prompt"] = r.prompt
        stop = list(r.stop)[: options.max_stop] if options.max_stop else list(r.stop)
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
    if not isinstance(usage, dict):
        return 0, 0
    return _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
