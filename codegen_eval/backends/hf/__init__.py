"""Hugging Face transformers backend (`--model hf:PATH`): `backend` (the ModelBackend, its batch loop, request
checks, rendering, tokenising), `load` (options, model resolution and loading, SmolLM2's conversion), `decode` (batch
rows, stops, samplers), `cache` (the prefix cache), `ray_pool` (data-parallel actors, `-B ray_actors=N`)."""

from codegen_eval.backends.hf.backend import HFBackend
from codegen_eval.backends.hf.load import HFOptions, cache_root, resolve_smollm2

__all__ = ["HFBackend", "HFOptions", "cache_root", "resolve_smollm2"]
