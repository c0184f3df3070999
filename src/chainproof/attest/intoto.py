"""in-toto Statements (v1 and v0.1) and the predicate types chainproof knows.

This module owns :class:`Statement` and :class:`Subject`, :func:`parse_statement` (structure
checked once, then trusted) and :func:`build_statement` (a v1 statement about one image). The
predicate types and their names are :mod:`chainproof.attest.predicates`'.

A statement names an image when one of its subjects carries the image's sha256 digest *and*
names the image's repository: the same digest under another name does not count, so a
statement made for ``evil.example/x`` cannot be replayed for ``gcr.io/proj/app`` even if
someone pushed the same bytes there. Judging predicate *contents* (builders, freshness,
severities) is the policy layer's job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chainproof.attest.predicates import predicate_kind
from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.domain.jsontext import parse_signed_json
from chainproof.errors import InvalidArgument

__all__ = [
    "INTOTO_PAYLOAD_TYPE",
    "STATEMENT_TYPES",
    "STATEMENT_V01",
    "STATEMENT_V1",
    "Statement",
    "Subject",
    "build_statement",
    "parse_statement",
]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
STATEMENT_TYPES = frozenset({STATEMENT_V1, STATEMENT_V01})

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Subject:
    """One subject: a name and its digests (algorithm → lowercase hex)."""

    name: str
    digest: Mapping[str, str]

    def names_repository(self, image: ImageReference) -> bool:
        """Whether :attr:`name` refers to the repository of ``image`` (tag ignored)."""
        try:
            named = parse_image_reference(self.name)
        except InvalidArgument:
            return False
        return named.name == image.name and named.digest in (None, image.digest)


@dataclass(frozen=True)
class Statement:
    """A parsed in-toto Statement; ``predicate`` is the raw JSON object (or None)."""

    statement_type: str
    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: Mapping[str, Any] | None = field(default=None, compare=False)

    format_name = "in-toto"

    @property
    def predicate_kind(self) -> str | None:
        return predicate_kind(self.predicate_type)

    def mismatches(self, image: ImageReference) -> tuple[str, ...]:
        """Why this statement is not about ``image``; empty when a subject names it."""
        if image.digest is None:
            return (f"image {image} has no digest to compare subjects with",)
        wanted = image.digest.removeprefix("sha256:")
        same_digest = [s for s in self.subjects if s.digest.get("sha256") == wanted]
        if not same_digest:
            listed = ", ".join(
                f"{s.name}@sha256:{s.digest['sha256']}" if "sha256" in s.digest else s.name
                for s in self.subjects
            )
            return (f"statement subjects do not include {image.digest}: they are {listed}",)
        if any(s.names_repository(image) for s in same_digest):
            return ()
        names = ", ".join(repr(s.name) for s in same_digest)
        return (
            f"statement names {image.digest} only under {names}, not under the image's "
            f"repository {image.name}",
        )


def parse_statement(data: bytes) -> Statement:
    """Parse a v1 or v0.1 Statement; raise InvalidArgument naming the first problem."""
    doc = parse_signed_json(data, "in-toto statement")
    if not isinstance(doc, Mapping):
        raise InvalidArgument("in-toto statement must be a JSON object")
    kind = doc.get("_type")
    if not isinstance(kind, str) or kind not in STATEMENT_TYPES:
        raise InvalidArgument(
            f"in-toto statement _type {kind!r} is not one of {', '.join(sorted(STATEMENT_TYPES))}"
        )
    raw_subjects = doc.get("subject")
    if not isinstance(raw_subjects, list) or not raw_subjects:
        raise InvalidArgument("in-toto statement needs a non-empty subject list")
    subjects = tuple(_subject(item, i) for i, item in enumerate(raw_subjects))
    predicate_type = doc.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise InvalidArgument("in-toto statement needs a non-empty string predicateType")
    predicate = doc.get("predicate")
    if predicate is not None and not isinstance(predicate, Mapping):
        raise InvalidArgument("in-toto statement predicate must be a JSON object")
    return Statement(kind, subjects, predicate_type, predicate)


def _subject(item: Any, index: int) -> Subject:
    if not isinstance(item, Mapping):
        raise InvalidArgument(f"in-toto subject {index} must be a JSON object")
    name = item.get("name", "")
    digest = item.get("digest")
    if not isinstance(name, str):
        raise InvalidArgument(f"in-toto subject {index} name must be a string")
    if not isinstance(digest, Mapping) or not digest:
        raise InvalidArgument(f"in-toto subject {index} needs a non-empty digest object")
    cleaned: dict[str, str] = {}
    for alg, value in digest.items():
        if not isinstance(value, str):
            raise InvalidArgument(f"in-toto subject {index} digest {alg!r} must be a string")
        cleaned[str(alg).lower()] = value.lower()
    sha = cleaned.get("sha256")
    if sha is not None and not _SHA256_HEX.fullmatch(sha):
        raise InvalidArgument(f"in-toto subject {index} sha256 digest {sha!r} is not 64 hex digits")
    return Subject(name, cleaned)


def build_statement(
    image: ImageReference,
    predicate_type: str,
    predicate: Mapping[str, Any],
    *,
    statement_type: str = STATEMENT_V1,
) -> bytes:
    """A Statement about ``image`` (subject name = ``registry/repository``), as UTF-8 JSON."""
    if image.digest is None:
        raise InvalidArgument(
            f"image {image} has no digest: a statement subject needs registry/repository@sha256"
        )
    if statement_type not in STATEMENT_TYPES:
        raise InvalidArgument(f"unknown in-toto statement type {statement_type!r}")
    doc = {
        "_type": statement_type,
        "subject": [
            {"name": image.name, "digest": {"sha256": image.digest.removeprefix("sha256:")}}
        ],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
