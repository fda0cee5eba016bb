"""Golden files: compare rendered text with a folder byte for byte, or (UPDATE_GOLDEN=1) rewrite the folder."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path


def on_disk(folder: Path, keep: frozenset[str] = frozenset()) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in keep
    }


def check_golden(folder: Path, expected: Mapping[str, str], keep: frozenset[str] = frozenset()) -> None:
    """Assert that `folder` holds exactly `expected` (relative path -> text); files named in `keep` are ignored.
    With UPDATE_GOLDEN=1 the folder is rewritten first (review the diff before committing it)."""
    if os.environ.get("UPDATE_GOLDEN") == "1":
        for rel in set(on_disk(folder, keep)) - set(expected):
            (folder / rel).unlink()
        for rel, text in expected.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
    found = on_disk(folder, keep)
    assert sorted(found) == sorted(expected), "golden files added or missing; rerun with UPDATE_GOLDEN=1"
    drifted = []
    for rel, text in expected.items():
        if found[rel] != text.encode("utf-8"):
            old = found[rel].decode("utf-8", "replace").splitlines(keepends=True)
            diff = difflib.unified_diff(old, text.splitlines(keepends=True), f"golden/{rel}", "rendered now")
            drifted.append("".join(diff))
    assert not drifted, "rendered prompts drifted (UPDATE_GOLDEN=1 to accept):\n" + "\n".join(drifted)
