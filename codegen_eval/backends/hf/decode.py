"""The hf backend's decode pieces: rows of a batch, per-row stop strings and samplers, left padding, seeds."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from codegen_eval.records import SamplingParams


@dataclass(slots=True)
class _Row:
    """One sequence to generate: one of the n samples of a request."""

    ids: list[int]
    budget: int
    sampling: SamplingParams  # its seed is the request's: `seed` is this row's own
    seed: int
    stop: tuple[str, ...]
    generated: list[int] = field(default_factory=list)  # new tokens so far (over paused calls)
    text: str | None = None  # set when the row is finished
    error: str | None = None

    @property
    def inputs(self) -> list[int]:
        return self.ids + self.generated

    @property
    def remaining(self) -> int:
        return self.budget - len(self.generated)


class _RowStopper:
    """Marks a sequence done at EOS, at its own token budget, or once its new text contains one of its stops.

    Only the tail of the new tokens is decoded each step: a stop string that just completed lies within its
    byte length in tokens (every token is at least one byte); two extra tokens cover tokenizers that drop a
    leading space when decoding from the middle of a text.

    Pausing: once half the rows are done, generate would go on computing the finished rows (as padding)
    until the last one ends. If the unfinished rows' keys/values fit the prefix cache (`pause_tokens`), the
    stopper ends the call instead (`paused`), so that the caller resumes them in a fresh, full batch.
    """

    MIN_STEPS_LEFT = 8  # not worth a restart for fewer remaining steps

    def __init__(
        self, tokenizer: Any, start: int, batch: Sequence[_Row], eos_ids: Sequence[int], pause_tokens: int
    ) -> None:
        self.tokenizer = tokenizer
        self.start = start
        self.already = [len(r.generated) for r in batch]
        self.lengths = [len(r.inputs) for r in batch]
        self.budgets = [r.budget for r in batch]
        self.stops = [r.stop for r in batch]
        self.windows = [max((len(s.encode()) for s in r.stop), default=0) + 2 for r in batch]
        self.eos = frozenset(eos_ids)
        self.pause_tokens = pause_tokens
        self.done_at = [0] * len(batch)  # tokens generated (all calls) when the row stopped; 0 while it runs
        self.paused = False

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        step = input_ids.shape[1] - self.start
        tail = input_ids[:, -min(step + max(self.already), max(self.windows)) :].tolist()
        for i, tokens in enumerate(tail):
            if self.done_at[i]:
                continue
            produced = self.already[i] + step
            if tokens[-1] in self.eos or produced >= self.budgets[i]:
                self.done_at[i] = produced
            elif self.stops[i]:
                window = tokens[-min(produced, self.windows[i]) :]
                text = self.tokenizer.decode(window, skip_special_tokens=False)
                if any(s in text for s in self.stops[i]):
                    self.done_at[i] = produced
        running = [i for i, d in enumerate(self.done_at) if not d]
        if running and 2 * len(running) <= len(self.done_at) and self._worth_pausing(running, step):
            self.paused = True
            return torch.ones(len(self.done_at), dtype=torch.bool, device=input_ids.device)
        return torch.tensor([d > 0 for d in self.done_at], dtype=torch.bool, device=input_ids.device)

    def _worth_pausing(self, running: list[int], step: int) -> bool:
        left = max(self.budgets[i] - self.already[i] - step for i in running)
        kept = sum(self.lengths[i] + step for i in running)
        return left >= self.MIN_STEPS_LEFT and kept <= self.pause_tokens


class _RowSampler:
    """Samples every row with temperature > 0 from its own seeded stream; leaves greedy rows to argmax.

    Returns scores that allow only the chosen token, so generate's greedy step picks it. The distribution is
    the usual one (temperature, then top-k, then top-p keeping the smallest head with mass >= p). A row's
    k-th new token always uses the k-th number of its stream, however its generation was split into calls.
    """

    def __init__(self, start: int, batch: Sequence[_Row], device: torch.device) -> None:
        import torch

        self.start = start
        sampled = [i for i, r in enumerate(batch) if r.sampling.temperature > 0]
        rows = [batch[i] for i in sampled]
        params = [r.sampling for r in rows]
        self.rows = torch.tensor(sampled, dtype=torch.long, device=device)
        self.temperature = torch.tensor([p.temperature for p in params], dtype=torch.float32, device=device)
        self.top_p = torch.tensor([p.top_p for p in params], dtype=torch.float32, device=device)[:, None]
        self.top_k = torch.tensor([p.top_k for p in params], dtype=torch.long, device=device)[:, None]
        self.already = torch.tensor([len(r.generated) for r in rows], dtype=torch.long, device=device)
        width = max(r.budget for r in rows)
        uniforms = torch.zeros((len(rows), width), dtype=torch.float64)
        for j, row in enumerate(rows):
            generator = torch.Generator().manual_seed(row.seed)
            uniforms[j, : row.budget] = torch.rand(row.budget, generator=generator, dtype=torch.float64)
        self.uniforms = uniforms.to(device)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        position = self.already + (input_ids.shape[1] - self.start)  # index of the token being chosen
        logits = scores[self.rows].float() / self.temperature[:, None]
        # stable: equal logits keep vocabulary order, so the choice never depends on the sort's whims
        ordered, order = torch.sort(logits, dim=-1, descending=True, stable=True)
        probs = torch.softmax(ordered, dim=-1)
        rank = torch.arange(probs.shape[-1], device=probs.device)[None, :]
        keep = (self.top_k <= 0) | (rank < self.top_k)
        mass_before = torch.cumsum(probs, dim=-1) - probs
        keep &= (mass_before < self.top_p) | (rank == 0)
        probs = torch.where(keep, probs, torch.zeros_like(probs)).double()
        cumulative = torch.cumsum(probs, dim=-1)
        uniform = self.uniforms.gather(1, position.clamp(max=self.uniforms.shape[1] - 1)[:, None])
        target = uniform * cumulative[:, -1:]
        pick = torch.searchsorted(cumulative, target, right=True)
        pick = torch.minimum(pick, keep.sum(dim=-1, keepdim=True) - 1)  # rounding at the top end
        token = order.gather(1, pick)
        out = scores.clone()
        out[self.rows] = float("-inf")
        out[self.rows[:, None], token] = 0.0
        return out


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids padded on the left to a rectangle, and the attention mask (0 on padding)."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        if seq:
            ids[i, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
            mask[i, width - len(seq) :] = 1
    return ids, mask


def _row_seed(seed: int | None, sample: int, ids: Sequence[int]) -> int:
    """A 63-bit seed for one sequence: from (seed, sample index, prompt tokens), or random without a seed."""
    if seed is None:
        return secrets.randbits(63)
    digest = hashlib.sha256(f"{seed}\0{sample}\0".encode() + b",".join(b"%d" % t for t in ids)).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _fallback_length(new: Sequence[int], eos: Sequence[int], budget: int) -> int:
    """Length of a sequence the stopper did not mark: up to and including its first EOS, within the budget."""
    return next((i + 1 for i, token in enumerate(new[:budget]) if token in eos), min(len(new), budget))


def _decode_continuation(tokenizer: Any, prompt: Sequence[int], new: Sequence[int]) -> str:
    """Decode new tokens as they continue the prompt.

    Decoding them alone can drop a leading space (SentencePiece) or split a character across the boundary,
    so decode a few prompt tokens with them and remove what those alone decode to.
    """
    head = list(prompt[-4:])
    before = tokenizer.decode(head, skip_special_tokens=True)
    both = tokenizer.decode(head + list(new), skip_special_tokens=True)
    if both.startswith(before):
        return str(both[len(before) :])
    return str(tokenizer.decode(list(new), skip_special_tokens=True))


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def _free_device_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
