"""What every ``chainproof`` command shares: server options, output, input files, errors.

* :data:`ServerOpt`, :data:`CaCertOpt`, :data:`ClientCertOpt`, :data:`ClientKeyOpt` and
  :func:`client` connect a command to a server; :data:`JsonOpt` selects machine output.
* :func:`errors` is the one place a command's :class:`~chainproof.errors.ChainproofError`
  becomes a message on stderr and an exit code (through :func:`chainproof.cli.main.fail`).
* :func:`load_documents` reads YAML or JSON files (several YAML documents allowed), turning
  syntax errors into InvalidArgument with the line and column.
* :func:`print_json`, :data:`out` and :func:`note` print; human output goes through rich,
  machine output is plain JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from chainproof.cli.client import ChainproofClient, ServerOptions
from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.errors import ChainproofError, InvalidArgument

#: Human output. soft_wrap keeps long digests and names on one line, so they can be copied.
out = Console(soft_wrap=True, highlight=False)

ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="CHAINPROOF_SERVER",
        show_envvar=True,
        help="chainproof server URL (default: http://127.0.0.1:8080).",
    ),
]
CaCertOpt = Annotated[
    Path | None,
    typer.Option("--ca-cert", help="PEM CA bundle to trust for an https:// server."),
]
ClientCertOpt = Annotated[
    Path | None,
    typer.Option("--client-cert", help="PEM client certificate, for a server requiring mTLS."),
]
ClientKeyOpt = Annotated[
    Path | None,
    typer.Option("--client-key", help="PEM private key of --client-cert."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Project ID, e.g. my-project.")]


#: Set by the root ``--token`` option (``chainproof --token … COMMAND``); else $CHAINPROOF_TOKEN.
_token: dict[str, str | None] = {"value": None}


def set_token(token: str | None) -> None:
    _token["value"] = token


def client(
    server: str | None,
    ca_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
) -> ChainproofClient:
    return ChainproofClient(
        ServerOptions(server, ca_cert, client_cert, client_key, token=_token["value"])
    )


@contextmanager
def errors() -> Iterator[None]:
    """Turn a ChainproofError raised inside the block into a message and an exit code."""
    from chainproof.cli.main import fail

    try:
        yield
    except ChainproofError as exc:
        raise fail(exc) from None


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
    from chainproof.cli.main import err

    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidArgument(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise InvalidArgument(f"{what} {path} is a directory, not a file") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"{what} {path} is not UTF-8 text") from None
    except OSError as exc:
        raise InvalidArgument(f"cannot read {what} {path}: {exc.strerror}") from None


def load_documents(path: Path, what: str) -> list[Any]:
    """The documents of a YAML or JSON file (a JSON file is one document)."""
    text = read_text(path, what)
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            if path.suffix.lower() == ".json":
                raise InvalidArgument(
                    f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                    f"column {exc.colno}"
                ) from None
            # Flow-style YAML also starts with '{'; let the YAML parser have a go.
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidArgument(f"{what} {path} is not valid YAML{where}: {problem}") from None
    if not docs:
        raise InvalidArgument(f"{what} {path} is empty")
    return docs


def load_document(path: Path, what: str) -> Any:
    docs = load_documents(path, what)
    if len(docs) != 1:
        raise InvalidArgument(
            f"{what} {path} holds {len(docs)} YAML documents; expected exactly one"
        )
    return docs[0]


def pinned_image(text: str) -> ImageReference:
    """An image reference that carries a digest; a tag alone is refused with how to pin it."""
    image = parse_image_reference(text)
    if image.digest is None:
        raise InvalidArgument(
            f"image {text!r} has no digest: attestations vouch for exact image contents, and a "
            "tag can be moved to other contents. Pin it by digest, "
            f"{image.name}@sha256:<digest>; get the digest with `crane digest {image.canonical}`,"
            f" `docker buildx imagetools inspect {image.canonical}` or "
            f"`skopeo inspect docker://{image.canonical}`"
        )
    return image
