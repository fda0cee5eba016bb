"""`--model` strings: backends, aliases, and one clear line (with a likely meaning) for what names nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen_eval.backends import resolve_model
from codegen_eval.backends.hf.load import check_model_ref, require_extra
from codegen_eval.errors import UsageError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("reference", ("reference", "")),
        ("hf:/models/x", ("hf", "/models/x")),
        ("openai:gpt-4", ("openai", "gpt-4")),
        ("smollm2-135m", ("hf", "smollm2-135m")),
    ],
)
def test_resolves(spec: str, expected: tuple[str, str]) -> None:
    assert resolve_model(spec) == expected


@pytest.mark.parametrize(
    ("spec", "meant"),
    [
        ("hf-/no/such/dir", "hf:/no/such/dir"),
        ("HF_Salesforce/codegen-350M-mono", "hf:Salesforce/codegen-350M-mono"),
        ("openai-gpt-4", "openai:gpt-4"),
        ("replay=samples.jsonl", "replay:samples.jsonl"),
        ("smollm2", "smollm2-135m"),
        ("Salesforce/codegen-350M-mono", "hf:Salesforce/codegen-350M-mono"),  # a hub id without its backend
    ],
)
def test_did_you_mean(spec: str, meant: str) -> None:
    with pytest.raises(UsageError, match=rf"^unknown model '{spec}'; did you mean '{meant}'\? \(--model takes") as e:
        resolve_model(spec)
    assert "\n" not in str(e.value)


def test_a_bare_folder_suggests_hf(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=f"did you mean 'hf:{tmp_path}'"):
        resolve_model(str(tmp_path))


def test_unknown_backend_names_the_close_one() -> None:
    with pytest.raises(UsageError, match=r"^unknown backend 'refrence'; did you mean 'reference'\? \(known: "):
        resolve_model("refrence")
    with pytest.raises(UsageError, match=r"^unknown backend 'nonsense' \(known: hf, openai, reference, replay\)$"):
        resolve_model("nonsense")


def test_hf_model_ref(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_model_ref(str(tmp_path)) == str(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m").mkdir()
    assert check_model_ref("~/m") == str(tmp_path / "m")
    for hub_id in ("gpt2", "Salesforce/codegen-350M-mono", "org/name.v1_x"):
        assert check_model_ref(hub_id) == hub_id  # left to transformers: the cache, then the hub
    for nothing in ("/no/such/dir", "./nope", "~/nope", "a/b/c", "-x"):
        with pytest.raises(UsageError, match=f"^hf: no such model folder or hub id: '{nothing}'$"):
            check_model_ref(nothing)
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(UsageError, match=r"is a file, not a model folder$"):
        check_model_ref(str(tmp_path / "weights.bin"))


def test_require_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    require_extra()  # this venv has it
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(UsageError) as e:
        require_extra()
    assert str(e.value) == (
        "backend 'hf' needs torch and transformers (transformers is not installed): pip install 'codegen-eval[hf]'"
    )
