"""Hugging Face transformers backend (`--model hf:PATH`): `backend` (the ModelBackend, its batch loop, request
checks, rendering, tokenising), `load` (options, model resolution and loading, SmolLM2's conversion), `decode` (batch
rows, stops, samplers), `cache` (the prefix cache), `ray_pool` (data-parallel actors, `-B ray_actors=N`)."""

from codegen_eval.backends.hf.backend import HFBackend

__all__ = ["HFBackend"]
