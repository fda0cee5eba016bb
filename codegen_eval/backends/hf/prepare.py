"""The hf backend's request preparation: checks, chat rendering, tokenising, fitting each prompt into the context."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from codegen_eval.chat import SYSTEM_INSTRUCTION
from codegen_eval.records import GenerationRequest

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Prepared:
    """A request after validation and tokenisation."""

    ids: list[int] = dataclasses.field(default_factory=list)
    error: str | None = None
    notes: tuple[str, ...] = ()


def prepare(
    requests: Sequence[GenerationRequest], tokenizer: Any, chat: bool, max_context: int | None
) -> list[_Prepared]:
    """Each request checked, rendered (chat mode) and tokenised; its budget cut (with a note) to what fits."""
    prepared = [_Prepared(error=_request_error(r)) for r in requests]
    texts = [""] * len(requests)
    for i, (req, prep) in enumerate(zip(requests, prepared, strict=True)):
        if prep.error is None:
            try:
                texts[i] = render(tokenizer, chat, req)
            except Exception as exc:  # a template may refuse some conversations (e.g. a system role)
                prep.error = f"chat template failed: {type(exc).__name__}: {exc}"
    todo = [i for i, p in enumerate(prepared) if p.error is None]
    if todo:
        # Chat templates write their own special tokens; raw prompts get the tokenizer's usual ones.
        encoded = tokenizer([texts[i] for i in todo], add_special_tokens=not chat, verbose=False)["input_ids"]
        for i, ids in zip(todo, encoded, strict=True):
            prepared[i].ids = list(ids)
    for req, prep in zip(requests, prepared, strict=True):
        if prep.error is not None:
            continue
        space = room(max_context, len(prep.ids))
        if space < 1:
            prep.error = f"prompt of {len(prep.ids)} tokens does not fit the model's context of {max_context}"
        elif space < req.max_new_tokens:
            prep.notes = (
                f"max_new_tokens reduced from {req.max_new_tokens} to {space}: the prompt has "
                f"{len(prep.ids)} tokens and the context {max_context}",
            )
            log.warning("request %s: %s", req.key, prep.notes[0])
    return prepared


def render(tokenizer: Any, chat: bool, req: GenerationRequest) -> str:
    """The text to tokenise: the prompt, or in chat mode the messages through the chat template."""
    if not chat:
        return req.prompt
    messages = [{"role": m.role, "content": m.content} for m in req.messages] or [
        {"role": "system", "content": SYSTEM_INSTRUCTION},
        {"role": "user", "content": req.prompt},
    ]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return str(text)


def room(max_context: int | None, prompt_tokens: int) -> int:
    """New tokens that fit after a prompt of `prompt_tokens`."""
    if max_context is None:
        return 1 << 30
    return max_context - prompt_tokens


def _request_error(req: GenerationRequest) -> str | None:
    s = req.sampling
    if req.n < 1:
        return f"n must be at least 1 (got {req.n})"
    if req.max_new_tokens < 1:
        return f"max_new_tokens must be at least 1 (got {req.max_new_tokens})"
    if s.temperature < 0:
        return f"temperature must be >= 0 (got {s.temperature})"
    if s.temperature == 0 and req.n > 1:
        return (
            f"n={req.n} samples with temperature 0: greedy decoding gives {req.n} identical texts; "
            "use temperature > 0 or n=1"
        )
    if not 0 < s.top_p <= 1:
        return f"top_p must be in (0, 1] (got {s.top_p})"
    if s.top_k < 0:
        return f"top_k must be >= 0 (got {s.top_k})"
    return None
