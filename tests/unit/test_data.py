"""Dataset resolution: data dir (flag, env), user cache, sha256-verified download from a real local server."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from codegen_eval.benchmarks.mtpb import MTPB_DATA
from codegen_eval.data import (
    DATA_DIR_ENV,
    DatasetSpec,
    asset_path,
    cache_dir,
    cache_path,
    resolve_dataset,
    sha256_bytes,
    sha256_file,
)
from codegen_eval.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
CONTENT = b'{"id": "1"}\n{"id": "2"}\n'
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def spec() -> DatasetSpec:
    return DatasetSpec(
        name="toy",
        filename="toy.jsonl",
        sha256=SHA,
        url="http://127.0.0.1:9/unused",
        hint="the toy data",
    )


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No test sees the user's cache, data dir or URL overrides."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    for key in list(os.environ):
        if key.startswith("CODEGEN_EVAL_") and key.endswith("_URL"):
            monkeypatch.delenv(key)
    return cache


class _Server:
    def __init__(self, root: Path) -> None:
        handler = _quiet_handler(root)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


def _quiet_handler(root: Path) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_Server]:
    root = tmp_path / "served"
    root.mkdir()
    srv = _Server(root)
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- helpers -----------------------------------------------------------------------------------------------


def test_sha256_helpers(tmp_path: Path) -> None:
    assert sha256_bytes(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    f = tmp_path / "f"
    f.write_bytes(b"abc" * 1_000_000)
    assert sha256_file(f) == hashlib.sha256(b"abc" * 1_000_000).hexdigest()


def test_url_env_name() -> None:
    assert MTPB_DATA.url_env == "CODEGEN_EVAL_MTPB_URL"
    assert DatasetSpec("human-eval", "x", "", "", "").url_env == "CODEGEN_EVAL_HUMAN_EVAL_URL"


def test_mtpb_spec_is_pinned() -> None:
    assert MTPB_DATA.sha256 == "3ab79ddb160f484a63491330ba72204930d56cc946f7c0c5fb469622a941f89c"
    assert "/6f09e495f41e006375055239e4bcb18539f3a38b/codegen1/benchmark/mtpb.jsonl" in MTPB_DATA.url


def test_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" / "codegen-eval"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for value in ("", "relative/dir"):  # the XDG spec: empty or relative means unset
        monkeypatch.setenv("XDG_CACHE_HOME", value)
        assert cache_dir() == tmp_path / "home" / ".cache" / "codegen-eval"


def test_asset_path_in_a_source_checkout() -> None:
    assert asset_path("mtpb", "x.json") == REPO / "benchmarks" / "mtpb" / "x.json"


# -- data dir ----------------------------------------------------------------------------------------------


def test_data_dir_nested_and_flat_layouts(spec: DatasetSpec, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "toy.jsonl").write_bytes(CONTENT)
    assert resolve_dataset(spec, flat) == flat / "toy.jsonl"
    nested = tmp_path / "nested"
    (nested / "toy").mkdir(parents=True)
    (nested / "toy" / "toy.jsonl").write_bytes(CONTENT)
    (nested / "toy.jsonl").write_bytes(b"the nested copy is looked at first")
    assert resolve_dataset(spec, nested) == nested / "toy" / "toy.jsonl"


def test_env_data_dir_and_flag_precedence(spec: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir, flag_dir = tmp_path / "env", tmp_path / "flag"
    for d in (env_dir, flag_dir):
        d.mkdir()
        (d / "toy.jsonl").write_bytes(CONTENT)
    monkeypatch.setenv(DATA_DIR_ENV, str(env_dir))
    assert resolve_dataset(spec, None) == env_dir / "toy.jsonl"
    assert resolve_dataset(spec, flag_dir) == flag_dir / "toy.jsonl"


def test_data_dir_must_exist(spec: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match=r"--data-dir: .*missing is not a directory"):
        resolve_dataset(spec, tmp_path / "missing")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(UsageError, match=r"\$CODEGEN_EVAL_DATA_DIR: .*missing is not a directory"):
        resolve_dataset(spec, None)


def test_data_dir_checksum_mismatch_is_refused(spec: DatasetSpec, tmp_path: Path) -> None:
    (tmp_path / "toy.jsonl").write_bytes(CONTENT + b"tampered")
    actual = sha256_bytes(CONTENT + b"tampered")
    with pytest.raises(UsageError) as e:
        resolve_dataset(spec, tmp_path)
    assert f"has sha256 {actual}, expected {SHA}" in str(e.value)
    assert "--data-dir" in str(e.value)


def test_data_dir_without_the_file_falls_back_to_the_cache(spec: DatasetSpec, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cached = cache_path(spec)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(CONTENT)
    assert resolve_dataset(spec, empty) == cached


def test_real_mtpb_file_from_a_data_dir(data_dir: Path) -> None:
    path = resolve_dataset(MTPB_DATA, data_dir)
    assert sha256_file(path) == MTPB_DATA.sha256


def test_mtpb_is_found_in_the_package_with_nothing_else(isolated: Path) -> None:
    # No data dir, an empty cache and an unreachable URL: the copy shipped in the package is used, offline.
    path = resolve_dataset(MTPB_DATA, None)
    assert path == asset_path("mtpb", "mtpb.jsonl")  # the installed package's copy, or this checkout's
    assert sha256_file(path) == MTPB_DATA.sha256
    assert not (isolated / "codegen-eval").exists()  # nothing downloaded, nothing cached


def test_a_data_dir_overrides_the_package_copy(tmp_path: Path) -> None:
    (tmp_path / "mtpb").mkdir()
    own = tmp_path / "mtpb" / "mtpb.jsonl"
    shutil.copyfile(REPO / "benchmarks" / "mtpb" / "mtpb.jsonl", own)
    assert resolve_dataset(MTPB_DATA, tmp_path) == own


def test_a_tampered_package_copy_is_refused(spec: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import codegen_eval.data as data

    shipped = tmp_path / "toy" / "toy.jsonl"
    shipped.parent.mkdir()
    shipped.write_bytes(CONTENT + b"edited")
    monkeypatch.setattr(data, "asset_path", lambda *parts: tmp_path.joinpath(*parts))
    packaged = DatasetSpec(spec.name, spec.filename, spec.sha256, spec.url, spec.hint, packaged=("toy", "toy.jsonl"))
    with pytest.raises(UsageError, match="the copy in the package"):
        resolve_dataset(packaged, None)
    shipped.write_bytes(CONTENT)
    assert resolve_dataset(packaged, None) == shipped


def test_the_package_copy_is_the_authors_file_with_its_license() -> None:
    folder = REPO / "benchmarks" / "mtpb"
    assert sha256_file(folder / "mtpb.jsonl") == "3ab79ddb160f484a63491330ba72204930d56cc946f7c0c5fb469622a941f89c"
    assert sha256_file(folder / "LICENSE") == "79e3de4165725ff4e9a429ed4d634dd44cace47fdc19048774c9d0aa24468adc"
    assert "mtpb.jsonl" in (folder / "PROVENANCE.md").read_text()
    assert (
        "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"
        in (REPO / "benchmarks" / "humaneval" / "PROVENANCE.md").read_text()
    )


# -- cache -------------------------------------------------------------------------------------------------


def test_cache_is_used_without_network(spec: DatasetSpec, isolated: Path) -> None:
    cached = isolated / "codegen-eval" / "toy" / "toy.jsonl"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(CONTENT)
    assert resolve_dataset(spec, None) == cached  # spec.url points at a closed port


def test_corrupt_cache_is_refused_not_reused_or_replaced(spec: DatasetSpec, isolated: Path) -> None:
    cached = cache_path(spec)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a fi")
    with pytest.raises(UsageError) as e:
        resolve_dataset(spec, None)
    message = str(e.value)
    assert str(cached) in message
    assert f"has sha256 {sha256_bytes(b'half a fi')}, expected {SHA}" in message
    assert cached.read_bytes() == b"half a fi"


# -- download (a real HTTP server on 127.0.0.1) -------------------------------------------------------------


def _serve(server: _Server, tmp_path: Path, body: bytes) -> str:
    (tmp_path / "served" / "toy.jsonl").write_bytes(body)
    return server.url("toy.jsonl")


def test_download_verifies_and_caches_atomically(
    spec: DatasetSpec, server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(spec.url_env, _serve(server, tmp_path, CONTENT))
    path = resolve_dataset(spec, None)
    assert path == cache_path(spec)
    assert path.read_bytes() == CONTENT
    assert sorted(p.name for p in path.parent.iterdir()) == ["toy.jsonl"]  # no temporary left behind
    # Later resolutions use the cache: the server is gone.
    server.httpd.shutdown()
    server.httpd.server_close()
    assert resolve_dataset(spec, None) == path


def test_download_from_spec_url_without_override(server: _Server, tmp_path: Path) -> None:
    url = _serve(server, tmp_path, CONTENT)
    spec = DatasetSpec("toy", "toy.jsonl", SHA, url, "the toy data")
    assert resolve_dataset(spec, None).read_bytes() == CONTENT


def test_corrupted_download_is_refused_and_not_cached(
    spec: DatasetSpec, server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _serve(server, tmp_path, CONTENT.replace(b"1", b"7"))
    monkeypatch.setenv(spec.url_env, url)
    with pytest.raises(UsageError) as e:
        resolve_dataset(spec, None)
    message = str(e.value)
    assert url in message
    assert f"sha256 {sha256_bytes(CONTENT.replace(b'1', b'7'))}, expected {SHA}" in message
    assert not cache_path(spec).exists()
    assert not cache_path(spec).parent.exists() or not any(cache_path(spec).parent.iterdir())


def test_http_error_is_one_clear_line(spec: DatasetSpec, server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(spec.url_env, server.url("absent.jsonl"))
    with pytest.raises(UsageError, match="HTTP 404") as e:
        resolve_dataset(spec, None)
    assert "\n" not in str(e.value)


def test_offline_without_a_copy_says_how_to_provide_it(spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{_free_port()}/toy.jsonl"  # nothing listens there: connection refused
    monkeypatch.setenv(spec.url_env, url)
    with pytest.raises(UsageError) as e:
        resolve_dataset(spec, None)
    message = str(e.value)
    assert "\n" not in message
    assert "the toy data is not available offline" in message
    assert url in message and "refused" in message.lower()
    assert "--data-dir" in message and "CODEGEN_EVAL_DATA_DIR" in message
    assert str(cache_path(spec)) in message and spec.url_env in message


def test_unwritable_cache_is_a_usage_error(
    spec: DatasetSpec, server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # mkdir under a regular file fails, even for root
    monkeypatch.setenv(spec.url_env, _serve(server, tmp_path, CONTENT))
    with pytest.raises(UsageError, match="cannot write the cache file"):
        resolve_dataset(spec, None)


def test_real_mtpb_file_downloaded_from_a_local_mirror(
    data_dir: Path, server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(data_dir / "mtpb" / "mtpb.jsonl", tmp_path / "served" / "mtpb.jsonl")
    monkeypatch.setenv("CODEGEN_EVAL_MTPB_URL", server.url("mtpb.jsonl"))
    # As for an install without the package copy (the download is the last fallback).
    unpackaged = dataclasses.replace(MTPB_DATA, packaged=())
    path = resolve_dataset(unpackaged, None)
    assert path == cache_path(MTPB_DATA)
    assert sha256_file(path) == MTPB_DATA.sha256
