"""Fixtures for benchmark tests: MTPB benchmarks and their items (data_dir comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from codegen_eval.benchmarks import build
from codegen_eval.benchmarks.base import BenchmarkSettings
from codegen_eval.benchmarks.mtpb import MTPB
from codegen_eval.records import Problem


def make_mtpb(data_dir: Path, turns: str = "multi", **options: str) -> MTPB:
    """MTPB as a run builds it: single-turn is the transform (benchmarks/transforms.py) around it."""
    return build("mtpb", BenchmarkSettings(data_dir=data_dir, options=options), turns)  # type: ignore[return-value]


@pytest.fixture(scope="session")
def mtpb_factory() -> Callable[..., MTPB]:
    """make_mtpb, for test modules (they cannot import conftest)."""
    return make_mtpb


@pytest.fixture(scope="session")
def mtpb_multi(data_dir: Path) -> MTPB:
    return make_mtpb(data_dir)


@pytest.fixture(scope="session")
def mtpb_single(data_dir: Path) -> MTPB:
    return make_mtpb(data_dir, "single")


@pytest.fixture(scope="session")
def items_multi(mtpb_multi: MTPB) -> dict[str, Problem]:
    return {p.id: p for p in mtpb_multi.load()}


@pytest.fixture(scope="session")
def items_single(mtpb_single: MTPB) -> dict[str, Problem]:
    return {p.id: p for p in mtpb_single.load()}
