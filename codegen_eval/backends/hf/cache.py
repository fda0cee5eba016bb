"""The hf backend's prefix cache: key/value states of shared prompt prefixes (MTPB histories), bounded by memory."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codegen_eval.backends.hf.load import _transformers

if TYPE_CHECKING:
    import torch


@dataclass(slots=True)
class _Entry:
    tokens: list[int]
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer, [heads, len(tokens), head_dim]
    nbytes: int


class _PrefixCache:
    """An LRU of per-sequence key/value tensors, keyed by their tokens.

    Positions of a causal model see only earlier tokens, so the keys/values of any common token prefix can be
    reused. Lookup hashes the prefix block by block (16 tokens) and then extends the match token by token.
    Entries live on the model's device; the oldest are dropped past `capacity` bytes.
    """

    BLOCK = 16

    def __init__(self, capacity: int, bytes_per_token: int = 0) -> None:
        self.capacity = capacity
        self.bytes_per_token = bytes_per_token  # 0 until known (set by the first store)
        self.size = 0
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._index: dict[int, int] = {}  # block-prefix hash -> newest entry id with that prefix
        self._next = 0

    def free_tokens(self) -> int:
        """How many tokens of keys/values the cache can hold (a whole batch's worth, evicting older ones)."""
        return self.capacity // self.bytes_per_token if self.bytes_per_token else 0

    @classmethod
    def _hashes(cls, tokens: Sequence[int]) -> Iterator[int]:
        h = 0
        for end in range(cls.BLOCK, len(tokens) + 1, cls.BLOCK):
            h = hash((h, tuple(tokens[end - cls.BLOCK : end])))
            yield h

    def lookup(self, tokens: list[int]) -> tuple[_Entry | None, int]:
        """The entry sharing the longest prefix with `tokens`, and that length (at most len(tokens) - 1)."""
        limit = len(tokens) - 1  # the last input token must be fed to get the next token's logits
        for blocks, h in reversed(list(enumerate(self._hashes(tokens[:limit]), start=1))):
            eid = self._index.get(h)
            entry = self._entries.get(eid) if eid is not None else None
            n = blocks * self.BLOCK
            if entry is None or entry.tokens[:n] != tokens[:n]:
                continue
            top = min(limit, len(entry.tokens))
            while n < top and entry.tokens[n] == tokens[n]:
                n += 1
            self._entries.move_to_end(eid)  # type: ignore[arg-type]
            return entry, n
        return None, 0

    def assemble(self, inputs: Sequence[list[int]], width: int, model: Any, device: torch.device) -> tuple[Any, int]:
        """A cache covering the first P columns of the left-padded batch, or None when nothing is reusable.

        P is where the last row's uncached suffix begins: rows whose reusable prefix reaches further recompute
        the rest. Pad columns hold zeros (they are masked).
        """
        import torch

        hits = [self.lookup(tokens) for tokens in inputs]
        columns = width - max(len(tokens) - n for tokens, (_, n) in zip(inputs, hits, strict=True))
        if columns < self.BLOCK:
            return None, 0
        template = next(e for e, _ in hits if e is not None)
        layers = []
        for layer, (k0, v0) in enumerate(template.kv):
            keys = torch.zeros((len(inputs), k0.shape[0], columns, k0.shape[2]), dtype=k0.dtype, device=device)
            values = torch.zeros((len(inputs), v0.shape[0], columns, v0.shape[2]), dtype=v0.dtype, device=device)
            for i, (tokens, (entry, _)) in enumerate(zip(inputs, hits, strict=True)):
                offset = width - len(tokens)
                count = columns - offset  # never more than the hit's length: columns <= offset + n
                if count > 0 and entry is not None:
                    keys[i, :, offset:columns] = entry.kv[layer][0][:, :count]
                    values[i, :, offset:columns] = entry.kv[layer][1][:, :count]
            layers.append((keys, values))
        reused = sum(max(0, columns - (width - len(tokens))) for tokens in inputs)
        return _transformers().DynamicCache(layers, config=model.config), reused

    def store(
        self, inputs: Sequence[list[int]], new: Sequence[list[int]], counts: Sequence[int], width: int, cache: Any
    ) -> bool:
        """Keep each row's keys/values: its input + its new tokens but the last (never fed). False: unusable.

        `counts[i]` is how many of `new[i]` belong to row i (the rest is padding after it stopped).
        """
        layers = _plain_layers(cache, width + max(len(t) for t in new) - 1)
        if layers is None:
            return False
        for i, tokens in enumerate(inputs):
            length = len(tokens) + counts[i] - 1
            offset = width - len(tokens)
            if length < self.BLOCK:
                continue
            span = slice(offset, offset + length)
            kv = [(layer.keys[i, :, span].clone(), layer.values[i, :, span].clone()) for layer in layers]
            nbytes = sum(k.nbytes + v.nbytes for k, v in kv)
            self.bytes_per_token = self.bytes_per_token or nbytes // length
            if nbytes > self.capacity:
                continue
            self._add(_Entry(tokens + new[i][: counts[i] - 1], kv, nbytes))
        return True

    def clear(self) -> None:
        self._entries.clear()
        self._index.clear()
        self.size = 0

    def _add(self, entry: _Entry) -> None:
        eid = self._next
        self._next += 1
        self._entries[eid] = entry
        self.size += entry.nbytes
        for h in self._hashes(entry.tokens):
            self._index[h] = eid
        while self.size > self.capacity:
            old_id, old = self._entries.popitem(last=False)
            self.size -= old.nbytes
            for h in self._hashes(old.tokens):
                if self._index.get(h) == old_id:
                    del self._index[h]


def _plain_layers(cache: Any, length: int) -> list[Any] | None:
    """The cache's layers when it is a plain per-layer key/value cache holding `length` positions, else None."""
    layers = getattr(cache, "layers", None)
    if not layers or any(type(layer) is not _transformers().cache_utils.DynamicLayer for layer in layers):
        return None
    if any(layer.keys is None or layer.keys.dim() != 4 or layer.keys.shape[2] != length for layer in layers):
        return None
    return list(layers)


def _cache_kwarg(model: Any) -> str | None:
    """The generate() keyword for a ready cache: `cache` in transformers >= 5.2x, `past_key_values` before."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in params), None)


def _kv_bytes_per_token(model: Any, device: torch.device, token: int, cache_kwarg: str) -> int:
    """Key/value bytes per token when the model keeps a plain per-layer key/value cache, else 0.

    Prefix reuse needs exactly that layout (no sliding window, no recurrent state): check it on a real
    one-token forward pass rather than trust the config.
    """
    import torch

    hf = _transformers()
    if model.generation_config.cache_implementation is not None:
        return 0
    supports = getattr(model, "_supports_default_dynamic_cache", None)
    if callable(supports) and not supports():
        return 0
    try:
        cache = hf.DynamicCache(config=model.config)
        with torch.inference_mode():
            model(input_ids=torch.tensor([[token]], device=device), use_cache=True, **{cache_kwarg: cache})
    except Exception:
        return 0
    layers = _plain_layers(cache, 1)
    return int(sum(layer.keys.nbytes + layer.values.nbytes for layer in layers)) if layers else 0
