from pathlib import Path

import pytest

from codegen_eval.config import RunConfig, from_mapping, load_yaml, parse_k, parse_kv
from codegen_eval.errors import UsageError


def test_hash_ignores_non_result_fields() -> None:
    a = RunConfig(output_dir="x", workers=1)
    b = RunConfig(output_dir="y", workers=4)
    assert a.config_hash() == b.config_hash()
    assert RunConfig(n=2, k=(1,)).config_hash() != RunConfig(n=3, k=(1,)).config_hash()


def test_k_greater_than_n_is_refused() -> None:
    with pytest.raises(UsageError, match="k=10 is larger than the number of samples n=1"):
        RunConfig(n=1, k=(1, 10)).validate()


def test_from_mapping_rejects_unknown_keys_with_hint() -> None:
    with pytest.raises(UsageError, match="did you mean 'temperature'"):
        from_mapping({"temprature": 0.2}, "run.yaml")


def test_from_mapping_type_errors() -> None:
    with pytest.raises(UsageError, match="'n' must be int"):
        from_mapping({"n": "five"}, "run.yaml")
    cfg = from_mapping({"temperature": 1, "k": [10, 1], "backend_options": {"dtype": "bf16", "x": True}}, "y")
    assert cfg.temperature == 1.0
    assert cfg.k == (1, 10)
    assert cfg.backend_options == (("dtype", "bf16"), ("x", "true"))


def test_roundtrip_through_dict() -> None:
    cfg = RunConfig(bench="mtpb", n=5, k=(1, 5), temperature=0.2, backend_options=(("a", "b"),))
    assert from_mapping(cfg.to_dict(), "run.json") == cfg


def test_yaml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("n: [1, 2\n")
    with pytest.raises(UsageError, match="invalid YAML"):
        load_yaml(bad)
    notmap = tmp_path / "list.yaml"
    notmap.write_text("- 1\n")
    with pytest.raises(UsageError, match="mapping"):
        load_yaml(notmap)
    with pytest.raises(UsageError, match="cannot read config"):
        load_yaml(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text("max-new-tokens: 64\nn: 2\n")
    assert load_yaml(good) == {"max_new_tokens": 64, "n": 2}


def test_parse_helpers() -> None:
    assert parse_k("1, 10,100") == (1, 10, 100)
    with pytest.raises(UsageError):
        parse_k("1,x")
    assert parse_kv(("a=1", "b=x=y"), "-B") == (("a", "1"), ("b", "x=y"))
    with pytest.raises(UsageError, match="key=value"):
        parse_kv(("novalue",), "-B")


def test_operational_backend_options_do_not_change_the_hash() -> None:
    def cfg(model: str, **options: str) -> RunConfig:
        return RunConfig(model=model, backend_options=tuple(options.items()))

    # Where the server is and how hard to push it: no number changes.
    a = cfg("openai:m", base_url="http://127.0.0.1:8000/v1", concurrency="16")
    b = cfg("openai:m", base_url="http://10.0.0.2:9000/v1", concurrency="4", retries="2")
    assert a.config_hash() == b.config_hash() and a.differences(b) == []
    # What is asked for does.
    assert a.config_hash() != cfg("openai:m", base_url="http://127.0.0.1:8000/v1", chat="true").config_hash()
    assert cfg("hf:x", batch_size="8").config_hash() == cfg("hf:x", batch_size="auto").config_hash()
    assert cfg("smollm2-135m", batch_size="8").config_hash() == cfg("smollm2-135m").config_hash()
    assert cfg("hf:x", dtype="bf16").config_hash() != cfg("hf:x").config_hash()
    # Options are per backend: a name that is operational for one is not for another.
    assert cfg("replay:f", batch_size="8").config_hash() != cfg("replay:f").config_hash()
