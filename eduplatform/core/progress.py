"""Progress bars of the long management commands: tqdm on a terminal, silent otherwise.

A bar is drawn only when the command's standard error is a terminal and the command runs
at verbosity 1 or more (``-v 0`` is quiet), and never for ``--no-progress`` where a
command has it. It goes to standard error and leaves no line behind, so a command's
output (standard output, JSON files) is the same with or without it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

from django.core.management.base import BaseCommand
from tqdm import tqdm


def command_bar(command: BaseCommand, options: dict[str, Any], **kwargs: Any) -> tqdm:
    """A tqdm bar for `command` (disabled off a terminal, at -v 0 or with --no-progress)."""
    stream: IO[str] = getattr(command.stderr, "_out", sys.stderr)
    enabled = (
        int(options.get("verbosity", 1)) > 0
        and not options.get("no_progress", False)
        and bool(getattr(stream, "isatty", lambda: False)())
    )
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(file=stream, disable=not enabled, **kwargs)


def stage_counter(bar: tqdm) -> Callable[[str, int], None]:
    """A ``progress(stage, rows)`` callback (the import's) that moves `bar`."""

    def progress(stage: str, rows: int) -> None:
        bar.set_description(stage, refresh=False)
        bar.update(rows)

    return progress


def say(command: BaseCommand, bar: tqdm, message: str) -> None:
    """Write a line to the command's standard error, above the bar when one is drawn."""
    if bar.disable:
        command.stderr.write(message)
    else:
        bar.write(message, file=getattr(command.stderr, "_out", sys.stderr))
