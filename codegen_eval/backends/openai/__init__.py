"""OpenAI-compatible server backend (`--model openai:NAME`): `backend` (the ModelBackend: worker threads, n split,
completions), `client` (HTTP: endpoints, connections, retries, failures), `probe` (GET /models at start), `wire`
(request bodies, reply parsing), `options`."""

from codegen_eval.backends.openai.backend import OpenAIBackend
from codegen_eval.backends.openai.client import _retry_after as _retry_after  # re-exported for the tests
from codegen_eval.backends.openai.options import OpenAIOptions

__all__ = ["OpenAIBackend", "OpenAIOptions"]
