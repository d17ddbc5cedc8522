"""Helpers that several `opro` commands share: input paths and warnings on stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from opro.errors import OproError


def absolute_data_path(path: str | None) -> str | None:
    """`--data PATH` as an absolute path (so a resumed run finds it), checked to exist."""
    if path is None:
        return None
    if not Path(path).exists():
        raise OproError(f"data not found: {path}")
    return str(Path(path).resolve())


def option_given(name: str) -> bool:
    """Whether the option `name` of the running command was given (on the command line or by its environment
    variable), not left at its default."""
    from click.core import ParameterSource

    return click.get_current_context().get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def warn_skipped(path: Path, reason: str) -> None:
    click.echo(f"opro: warning: skipped the unreadable run {path}: {reason}", err=True)


def warn_truncated(rate: float | None, max_tokens: int | None = None) -> None:
    """One stderr line when a prompt task's scorer answers were cut at their limit too often."""
    from opro.prompting.scoring import truncation_warning

    message = truncation_warning(rate, max_tokens)
    if message:
        click.echo(f"opro: warning: {message}", err=True)


def llm_text(llm: Any) -> str:
    """An LLM's spec, with the server an openai: one would reach."""
    import os

    if not llm.spec.startswith("openai:"):
        return llm.spec
    return f"{llm.spec} at {llm.base_url or os.environ.get('OPENAI_BASE_URL') or 'the OpenAI API'}"
