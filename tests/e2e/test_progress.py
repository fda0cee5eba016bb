"""Progress bars count sequences (one per sample per turn), so multi-turn work shows its real size."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli


def test_generation_bar_counts_every_turn(data_dir: Path, tmp_path: Path) -> None:
    r = run_cli(
        "run", "--bench", "mtpb", "--model", "reference", "--problems", "1-2", "--data-dir", str(data_dir),
        "--output-dir", str(tmp_path / "run"), "--progress",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    frames = r.stderr.replace("\r", "\n")
    # 2 problems x 5 test cases x 5 turns each; then 10 programs run.
    assert "generate: 100%" in frames and "50/50" in frames and "seq/s" in frames
    assert "execute: 100%" in frames and "10/10" in frames
