"""How every ``chainproof`` command speaks and ends: output, errors and exit codes.

* :data:`out` (stdout) and :data:`err` (stderr) are the two consoles; :func:`note`,
  :func:`warn`, :func:`table` and :func:`print_json` print through them. Human output goes
  through rich; machine output (``--json``) is plain JSON on stdout.
* :func:`errors` is the one place a :class:`~chainproof.errors.ChainproofError` becomes a
  message on stderr and an exit: :func:`fail` prints it and exits with the code the error
  class carries (:attr:`~chainproof.errors.ChainproofError.exit_code`: 2 bad usage or input,
  3 unreachable).
* :func:`check_failed` is the other way a command ends badly: no error, but a check that did
  not pass (exit :data:`EXIT_CHECK_FAILED`).

Library code never prints and never exits; only this module turns results into both.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chainproof.errors import ChainproofError, InvalidArgument

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_USAGE",
    "check_failed",
    "err",
    "errors",
    "fail",
    "note",
    "out",
    "print_json",
    "table",
    "warn",
]

#: A verification or an evaluation said no.
EXIT_CHECK_FAILED = 1
#: Bad usage or bad input (what every error but an unreachable server ends with).
EXIT_USAGE = InvalidArgument.exit_code

#: Human output. soft_wrap keeps long digests and names on one line, so they can be copied.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True)


def fail(exc: ChainproofError) -> typer.Exit:
    """Print ``exc`` on stderr and return the exit its class names (raise the result)."""
    # The message is plain text: paths such as ``clusterAdmissionRules[prod]`` must not be
    # read as rich markup.
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


@contextmanager
def errors() -> Iterator[None]:
    """Turn a ChainproofError raised inside the block into a message and an exit code."""
    try:
        yield
    except ChainproofError as exc:
        raise fail(exc) from None


def check_failed() -> typer.Exit:
    """The exit of a command whose check did not pass (raise the result)."""
    return typer.Exit(EXIT_CHECK_FAILED)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def table(*headers: str) -> Table:
    """A table whose cells wrap instead of being cut, so names and digests stay whole."""
    t = Table()
    for header in headers:
        t.add_column(header, overflow="fold")
    return t


def note(message: str, style: str = "") -> None:
    """A line of human output; ``message`` is plain text (never parsed as rich markup)."""
    out.print(escape(message), style=style or None)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)
