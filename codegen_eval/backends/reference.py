"""The reference backend: serves the benchmark's known-good solutions (pass@1 = 1.0 on a sound benchmark)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from codegen_eval.backends.base import BackendContext
from codegen_eval.errors import UsageError
from codegen_eval.records import Completion, GenerationRequest, SampleMode


class ReferenceBackend:
    name = "reference"
    mode: SampleMode = "completion"
    keeps_stop_strings = True  # serves texts as they are; stop hints play no part
    progress = None  # answers at once: nothing to report within a call

    def __init__(self, model: str, options: Mapping[str, str], context: BackendContext) -> None:
        if model not in ("", "reference"):
            raise UsageError(f"the reference backend takes no model name (got {model!r})")
        if options:
            raise UsageError(f"backend 'reference' has no options (got {', '.join(sorted(options))})")
        self._reference = context.reference

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        out = []
        for r in requests:
            turns = self._reference.get(r.problem_id)
            if turns is None or r.turn >= len(turns):
                out.append(Completion(texts=(), error=f"no reference solution for {r.problem_id}"))
            else:
                out.append(Completion(texts=(turns[r.turn],) * r.n))
        return out

    def provenance(self) -> Mapping[str, str]:
        return {"backend": "reference", "source": "the benchmark's reference solutions"}

    def close(self) -> None:
        pass
