"""Dataset resolution: data dir override, package data, user cache, sha256-pinned download; asset lookup."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from codegen_eval.errors import UsageError

log = logging.getLogger(__name__)

DATA_DIR_ENV = "CODEGEN_EVAL_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """One pinned data file: where it may live locally, where to fetch it, and its exact content hash."""

    name: str  # folder name under a data dir and under the cache, e.g. "mtpb"
    filename: str  # e.g. "mtpb.jsonl"
    sha256: str  # lowercase hex of the exact bytes
    url: str  # pinned download address (a commit, never a branch)
    hint: str  # what the file is, for error messages, e.g. "the MTPB data (salesforce/CodeGen ...)"
    packaged: tuple[str, ...] = ()  # the copy shipped in the wheel, as asset_path() parts ("mtpb", "mtpb.jsonl")

    @property
    def url_env(self) -> str:
        """Environment variable that overrides `url`, e.g. CODEGEN_EVAL_MTPB_URL."""
        return "CODEGEN_EVAL_" + re.sub(r"[^A-Z0-9]+", "_", self.name.upper()) + "_URL"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    """The user cache root: $XDG_CACHE_HOME/codegen-eval, default ~/.cache/codegen-eval."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "codegen-eval"


def cache_path(spec: DatasetSpec) -> Path:
    return cache_dir() / spec.name / spec.filename


def resolve_dataset(spec: DatasetSpec, data_dir: Path | None = None) -> Path:
    """Find `spec`'s file, sha256-verified: data dir (flag, else env) -> the copy in the package -> user cache
    -> download to the cache.

    The package copy makes an installed tool work offline; a data dir given explicitly overrides it. Every copy
    found is checked; a mismatch is refused (never silently replaced), so a number is always computed on the
    pinned bytes. Raises UsageError with one actionable line when no copy can be had.
    """
    directory, origin = _data_dir(data_dir)
    if directory is not None:
        for candidate in (directory / spec.name / spec.filename, directory / spec.filename):
            if candidate.is_file():
                _verify_file(spec, candidate, origin)
                return candidate
        log.info("%s: no %s in %s (%s); using the next source", spec.name, spec.filename, directory, origin)

    if spec.packaged:
        shipped = asset_path(*spec.packaged)
        if shipped.is_file():
            _verify_file(spec, shipped, "the copy in the package")
            return shipped

    cached = cache_path(spec)
    if cached.is_file():
        _verify_file(spec, cached, "the cache")
        return cached

    url = os.environ.get(spec.url_env) or spec.url
    data = _download(spec, url, cached)
    actual = sha256_bytes(data)
    if actual != spec.sha256:
        raise UsageError(
            f"{spec.hint}: the file downloaded from {url} has sha256 {actual}, expected {spec.sha256}; "
            "refusing it (nothing was written to the cache)"
        )
    try:
        write_atomic(cached, data, suffix=".part")
    except OSError as e:
        raise UsageError(
            f"{spec.hint}: downloaded, but cannot write the cache file {cached} ({e.strerror or e}); "
            f"set XDG_CACHE_HOME to a writable folder, or put the file in a data dir (${DATA_DIR_ENV})"
        ) from None
    log.info("%s: downloaded %s to %s", spec.name, url, cached)
    return cached


def _data_dir(flag: Path | None) -> tuple[Path | None, str]:
    if flag is not None:
        directory, origin = Path(flag), "--data-dir"
    elif os.environ.get(DATA_DIR_ENV):
        directory, origin = Path(os.environ[DATA_DIR_ENV]), f"${DATA_DIR_ENV}"
    else:
        return None, ""
    if not directory.is_dir():
        raise UsageError(f"{origin}: {directory} is not a directory")
    return directory, origin


def _verify_file(spec: DatasetSpec, path: Path, origin: str) -> None:
    try:
        actual = sha256_file(path)
    except OSError as e:
        raise UsageError(f"{spec.hint}: cannot read {path} ({origin}): {e.strerror or e}") from None
    if actual != spec.sha256:
        raise UsageError(
            f"{spec.hint}: {path} ({origin}) has sha256 {actual}, expected {spec.sha256}; "
            f"replace it with the pinned file or delete it (a deleted cache copy is downloaded again)"
        )


def _download(spec: DatasetSpec, url: str, cached: Path) -> bytes:
    log.info("%s: downloading %s", spec.name, url)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as e:
        reason = f"HTTP {e.code} {e.reason}"
    except urllib.error.URLError as e:
        reason = str(e.reason)
    except (OSError, ValueError, http.client.HTTPException) as e:  # timeouts, resets, bad URLs, short reads
        reason = str(e) or type(e).__name__
    raise UsageError(
        f"{spec.hint} is not available offline and the download from {url} failed ({reason}); "
        f"put {spec.filename} in DIR/{spec.name}/ and pass --data-dir DIR (or set ${DATA_DIR_ENV}=DIR), "
        f"or copy it to {cached}, or point ${spec.url_env} at a reachable copy"
    )


def write_atomic(path: Path, data: bytes, *, suffix: str = ".tmp", plain_mode: bool = False) -> None:
    """Write via a temporary file in the same folder, fsync, and rename, so readers never see a partial file.
    plain_mode: the mode a plain open() would give (0666 less the umask), not mkstemp's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        if plain_mode:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def asset_path(*parts: str) -> Path:
    """A benchmark asset (benchmarks/<name>/...): from the installed wheel, else from the source tree.

    The wheel ships the top-level benchmarks/ folder as the package codegen_eval.benchmark_assets; a source
    checkout run with PYTHONPATH has no such package, so fall back to <repo>/benchmarks.
    """
    try:
        from importlib.resources import files

        root = files("codegen_eval.benchmark_assets")
        installed = Path(str(root)).joinpath(*parts)
        if installed.exists():
            return installed
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent.joinpath("benchmarks", *parts)
