"""`codegen-eval sandbox …` commands: build the container sandbox's image, remove leftover containers."""

from __future__ import annotations

import sys

import click

from codegen_eval.errors import SandboxError
from codegen_eval.sandbox.container import DEFAULT_IMAGE


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


@click.group("sandbox")
def sandbox() -> None:
    """Maintain the container sandbox (--sandbox docker)."""


@sandbox.command("build-image")
@click.option("--tag", default=DEFAULT_IMAGE, show_default=True, help="Name of the image to build.")
@click.option(
    "--method",
    type=click.Choice(["auto", "debootstrap", "dockerfile"]),
    default="auto",
    show_default=True,
    help="debootstrap: from Debian packages, no registry (needs root); dockerfile: FROM python:3.11-slim.",
)
@click.option("--rebuild", is_flag=True, help="Build even if the image exists (the Debian root is reused).")
@click.option("--mirror", default=None, help="Debian mirror for debootstrap (default: the one apt uses).")
def build_image_command(tag: str, method: str, rebuild: bool, mirror: str | None) -> None:
    """Build the image programs run in: python3, numpy, pandas, scikit-learn."""
    from codegen_eval.sandbox.container_image import build_image

    try:
        build_image(tag, method=method, rebuild=rebuild, mirror=mirror, echo=click.echo)  # type: ignore[arg-type]
    except SandboxError as exc:
        _fail(exc)


@sandbox.command("prune")
@click.option("--all", "everything", is_flag=True, help="Also remove containers of runs still going.")
@click.option("--run", "run_id", default="", help="Only the containers of this run id.")
def prune_command(everything: bool, run_id: str) -> None:
    """Remove containers left behind by crashed runs."""
    from codegen_eval.sandbox.container import prune

    try:
        removed = prune(everything=everything, run_id=run_id)
    except SandboxError as exc:
        _fail(exc)
    click.echo(f"removed {len(removed)} container(s)" + (": " + ", ".join(removed) if removed else ""))


if __name__ == "__main__":
    sandbox()
