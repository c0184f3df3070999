"""Shared helpers for the ingest converter tests: real fixtures and a context to convert in."""

from __future__ import annotations

import hashlib
from pathlib import Path

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.ingest import IngestContext

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ingest"
IMAGE = parse_image_reference("registry.example/team/app@sha256:" + "ab" * 32)


def fixture(rel: str) -> bytes:
    return (FIXTURES / rel).read_bytes()


def context(raw: bytes, image: ImageReference | None = IMAGE) -> IngestContext:
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    return IngestContext("proj", image, digest, f"/v1/projects/proj/documents/{digest}")
