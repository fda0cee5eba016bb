"""Fixtures for the analyses' tests: the tiny CodeGen model (tests/models.py), built once per session."""

from tests.models import tiny_codegen

__all__ = ["tiny_codegen"]
