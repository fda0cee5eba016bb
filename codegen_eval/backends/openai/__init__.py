"""OpenAI-compatible server backend (`--model openai:NAME`): `backend` (the ModelBackend: worker threads, n split,
request bodies, reply parsing), `client` (options; HTTP: endpoints, connections, retries, failures), `probe` (GET
/models and the server's slots at start)."""

from codegen_eval.backends.openai.backend import OpenAIBackend
from codegen_eval.backends.openai.client import OpenAIOptions

__all__ = ["OpenAIBackend", "OpenAIOptions"]
