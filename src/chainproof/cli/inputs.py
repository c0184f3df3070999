"""What commands read from the user besides options: files, pinned images, times and ages.

* :func:`read_text`, :func:`load_documents` and :func:`load_document` read YAML or JSON files
  (several YAML documents allowed), turning syntax errors into InvalidArgument with the line
  and column;
* :func:`pinned_image` refuses an image without a digest, saying how to find it;
* :func:`moment` reads ``--since``/``--until`` (RFC 3339 through
  :func:`chainproof.domain.timestamps.parse_rfc3339`, or an age such as ``2h``) and
  :func:`lifetime` reads ``--expires 30d``; both use the one table of age units.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.domain.timestamps import parse_rfc3339
from chainproof.errors import InvalidArgument

_AGE = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


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


def _age(text: str) -> timedelta | None:
    m = _AGE.fullmatch(text.strip())
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))}) if m else None


def moment(text: str, option: str, now: datetime) -> datetime:
    """The moment ``text`` names, in UTC: RFC 3339 (``2026-11-22T10:00:00Z``; no zone is UTC)
    or an age before ``now`` (30m, 2h, 7d)."""
    age = _age(text)
    if age is not None:
        return (now - age).astimezone(UTC)
    try:
        return parse_rfc3339(text.strip()).astimezone(UTC)
    except ValueError:
        raise InvalidArgument(
            f"{option} {text!r} is not a time: expected RFC 3339 such as "
            "2026-11-22T10:00:00Z, or an age such as 30m, 2h, 7d"
        ) from None


def lifetime(text: str, option: str) -> timedelta:
    """A lifetime such as 30d, 12h or 90m."""
    age = _age(text)
    if age is None:
        raise InvalidArgument(f"{option} {text!r}: expected a lifetime such as 30d, 12h or 90m")
    return age
