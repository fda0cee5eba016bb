import pytest

from codegen_eval.backends import BACKENDS, resolve_model
from codegen_eval.benchmarks import BENCHMARKS
from codegen_eval.errors import UsageError


def test_did_you_mean() -> None:
    with pytest.raises(UsageError, match="unknown benchmark 'humaneva'; did you mean 'humaneval'"):
        BENCHMARKS.target("humaneva")
    with pytest.raises(UsageError, match="unknown backend 'refrence'; did you mean 'reference'"):
        resolve_model("refrence")


def test_resolve_model() -> None:
    assert resolve_model("reference") == ("reference", "")
    assert resolve_model("replay:/tmp/x.jsonl") == ("replay", "/tmp/x.jsonl")
    assert BACKENDS.load("reference").__name__ == "ReferenceBackend"
