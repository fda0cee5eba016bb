"""Fixtures for backend tests: the tiny CodeGen model (tests/models.py), built once per session."""

from tests.models import tiny_chat_codegen, tiny_codegen

__all__ = ["tiny_chat_codegen", "tiny_codegen"]
