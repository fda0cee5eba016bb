"""Builds the container sandbox's image: from Debian packages (debootstrap, no registry) or a Dockerfile."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from codegen_eval.errors import SandboxError
from codegen_eval.sandbox.container import DEFAULT_IMAGE, LABEL, SAFE_ULIMITS, USER, connect

Method = Literal["auto", "debootstrap", "dockerfile"]

SUITE = "bookworm"
# What HumanEval and MTPB programs import: the standard library, numpy, pandas, scikit-learn.
DEBIAN_PACKAGES = ("python3", "python3-numpy", "python3-pandas", "python3-sklearn")
# python3-scipy depends on python3-pythran, which brings a C++ toolchain and Boost headers (~750 MB) that
# nothing uses at run time. Purged after debootstrap (434 MB left instead of 1.2 GB).
_BUILD_ONLY = re.compile(
    r"^(g\+\+|gcc|cpp|binutils|libasan|libtsan|liblsan|libubsan|libhwasan|libitm|libcc1|python3-pythran|"
    r"python3-gast|python3-beniget|python3-ply|libisl|libmpc|libmpfr|libctf|libgprofng|libbinutils|libjansson|"
    r"linux-libc-dev|libc-dev-bin|rpcsvc-proto)|-dev$"
)
_KEEP = re.compile(r"^gcc-\d+-base$")  # runtime libraries (libgcc-s1) depend on it
_TRIM_VERSION = 1  # bump when the trimming changes, so cached roots are rebuilt
_COMPLETE = ".codegen-eval-complete"
_IMAGE_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
]
DOCKERFILE = """\
FROM python:3.11-slim
RUN pip install --no-cache-dir numpy pandas scikit-learn
ENV LANG=C.UTF-8
CMD ["python3"]
"""
_VERIFY = (
    "import numpy, pandas, sklearn, scipy; print('ok', numpy.__version__, pandas.__version__, sklearn.__version__)"
)


def cache_dir() -> Path:
    """Where debootstrap roots are kept between builds: $CODEGEN_EVAL_CACHE, else the XDG cache directory."""
    explicit = os.environ.get("CODEGEN_EVAL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "codegen-eval"


def debian_mirror() -> str:
    """The Debian mirror apt already uses (deb822 .sources or one-line sources.list), else deb.debian.org."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for stanza in path.read_text(errors="replace").split("\n\n"):
            fields = dict(
                (line.split(":", 1)[0].strip(), line.split(":", 1)[1].strip())
                for line in stanza.splitlines()
                if ":" in line and not line.startswith("#")
            )
            suites = fields.get("Suites", "").split()
            if SUITE in suites and "deb" in fields.get("Types", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        for line in listing.read_text(errors="replace").splitlines():
            parts = re.sub(r"\[[^]]*\]", " ", line).split()  # drop "[arch=… signed-by=…]"
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                return parts[1]
    return "http://deb.debian.org/debian"


def debootstrap_root(mirror: str | None = None, *, echo: Callable[[str], None] = print) -> Path:
    """A trimmed Debian root with DEBIAN_PACKAGES, built once and cached (about 1 minute the first time)."""
    if os.geteuid() != 0:
        raise SandboxError("building the image with debootstrap needs root (or use --method dockerfile)")
    if shutil.which("debootstrap") is None:
        raise SandboxError("debootstrap is missing (apt-get install debootstrap, or --method dockerfile)")
    mirror = mirror or debian_mirror()
    recipe = json.dumps([SUITE, DEBIAN_PACKAGES, mirror, _TRIM_VERSION]).encode()
    key = hashlib.sha256(recipe).hexdigest()[:12]
    root = cache_dir() / "rootfs" / f"{SUITE}-{key}"
    if (root / _COMPLETE).exists():
        echo(f"reusing cached Debian root {root}")
        return root
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    include = f"--include={','.join(DEBIAN_PACKAGES)}"
    command = ["debootstrap", "--variant=minbase", include, SUITE, str(partial), mirror]
    echo(f"running {' '.join(command)} (about a minute)")
    _run(command)
    installed = _run(["chroot", str(partial), "dpkg-query", "-W", "-f", "${Package}\\n"]).split()
    purge = [p for p in installed if _BUILD_ONLY.search(p) and not _KEEP.match(p)]
    if purge:
        echo(f"purging {len(purge)} build-only packages (compilers, headers) pulled in by python3-scipy")
        _run(["chroot", str(partial), "dpkg", "--purge", "--force-depends", *purge])
    for junk in ("var/cache/apt", "var/lib/apt/lists", *(f"usr/share/{d}" for d in ("doc", "man", "info", "locale"))):
        shutil.rmtree(partial / junk, ignore_errors=True)
    (partial / "var/cache/apt").mkdir(parents=True, exist_ok=True)
    _run(["chroot", str(partial), "python3", "-c", _VERIFY])
    (partial / _COMPLETE).write_text(mirror + "\n")
    partial.rename(root)
    return root


def build_image(
    tag: str = DEFAULT_IMAGE,
    *,
    method: Method = "auto",
    rebuild: bool = False,
    mirror: str | None = None,
    client: Any = None,
    echo: Callable[[str], None] = print,
) -> str:
    """Build (or find) the sandbox image `tag`; returns its id.

    "debootstrap" needs root and a Debian mirror but no registry; "dockerfile" needs a registry
    (python:3.11-slim) and PyPI reachable from the engine. "auto": debootstrap when it can run here.
    """
    import docker

    if client is None:
        client, _ = connect()
    if not rebuild:
        try:
            image = client.images.get(tag)
        except docker.errors.ImageNotFound:
            pass
        else:
            echo(f"image {tag} exists ({str(image.id)[:19]}); --rebuild to build it again")
            return str(image.id)
    if method == "auto":
        method = "debootstrap" if os.geteuid() == 0 and shutil.which("debootstrap") else "dockerfile"
    if method == "debootstrap":
        image_id = _import_root(client, debootstrap_root(mirror, echo=echo), tag, echo)
    elif method == "dockerfile":
        echo(f"building {tag} from a Dockerfile (FROM python:3.11-slim; needs a registry)")
        try:
            image, _ = client.images.build(fileobj=io.BytesIO(DOCKERFILE.encode()), rm=True, pull=True)
        except (docker.errors.BuildError, docker.errors.APIError) as exc:
            raise SandboxError(f"building {tag} from the Dockerfile failed: {exc}") from exc
        image_id = str(image.id)
    else:
        raise SandboxError(f"unknown image build method {method!r}")
    echo(f"checking the new image: {_VERIFY}")
    try:
        checker = client.containers.create(
            image_id,
            ["python3", "-c", _VERIFY],
            network_mode="none",
            user=USER,
            ulimits=SAFE_ULIMITS(),
            labels={LABEL: "1"},
        )
        try:
            checker.start()
            status = checker.wait(timeout=300)
            output = checker.logs(stdout=True, stderr=True).decode(errors="replace").strip()
        finally:
            checker.remove(force=True)
    except docker.errors.DockerException as exc:
        raise SandboxError(f"the new image for {tag} cannot run its check: {exc}") from exc
    if status.get("StatusCode") != 0:
        raise SandboxError(f"the new image for {tag} fails its check: {output[-500:]}")
    # Tagged only now, so a broken build never takes the name.
    repository, _, version = tag.rpartition(":")
    if not repository or "/" in version:
        repository, version = tag, "latest"
    previous = None
    with contextlib.suppress(docker.errors.ImageNotFound):
        previous = str(client.images.get(tag).id)
    client.images.get(image_id).tag(repository, version)
    if previous and previous != image_id:
        with contextlib.suppress(docker.errors.APIError):  # still used by a container: leave it
            client.images.remove(previous)
    echo(f"image {tag} ready ({image_id[:19]}): {output}")
    return image_id


def _import_root(client: Any, root: Path, tag: str, echo: Callable[[str], None]) -> str:
    with tempfile.TemporaryDirectory(dir=cache_dir()) as scratch:
        archive = Path(scratch) / "rootfs.tar"
        echo(f"importing {root} as {tag}")
        exclude = f"--exclude=./{_COMPLETE}"
        _run(["tar", "--numeric-owner", exclude, "-C", str(root), "-cf", str(archive), "."])
        answer = client.api.import_image_from_file(str(archive), changes=_IMAGE_CHANGES)
    # Untagged import: engines differ on honouring the tag given to import (podman drops it).
    return _imported_id(answer)


def _imported_id(answer: Any) -> str:
    """The new image's id from an import answer: one or more JSON objects (status/id) or a bare id."""
    text = str(answer) if isinstance(answer, str) else json.dumps(answer)
    ids: list[str] = re.findall(r"sha256:[0-9a-f]{64}", text)
    if not ids:
        raise SandboxError(f"the engine did not report an image id for the import: {text[:200]}")
    return ids[-1]


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise SandboxError(f"cannot run {command[0]}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise SandboxError(f"{' '.join(command[:3])} … failed (exit {done.returncode}):\n" + "\n".join(tail))
    return done.stdout
