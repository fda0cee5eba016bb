"""Fixtures for benchmark tests: the shared data folder and loaded MTPB items."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from codegen_eval.benchmarks.base import BenchmarkSettings
from codegen_eval.benchmarks.mtpb import MTPB
from codegen_eval.data import DATA_DIR_ENV
from codegen_eval.records import Problem

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """$CODEGEN_EVAL_DATA_DIR, else <repo>/../shared/data (the CI layout). Missing data is a failure."""
    env = os.environ.get(DATA_DIR_ENV)
    directory = Path(env) if env else REPO.parent / "shared" / "data"
    if not (directory / "mtpb" / "mtpb.jsonl").is_file():
        pytest.fail(f"no mtpb/mtpb.jsonl under {directory}: set {DATA_DIR_ENV} to the shared data folder")
    return directory


def make_mtpb(data_dir: Path, turns: str = "multi", **options: str) -> MTPB:
    return MTPB(BenchmarkSettings(data_dir=data_dir, turns=turns, options=options))


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
