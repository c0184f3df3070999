"""Golden tests: what each converter makes of each real document, kept under
tests/fixtures/ingest/golden/ and reviewed when it changes (CHAINPROOF_REGOLD=1 rewrites)."""

from __future__ import annotations

import json
import os

import pytest

from chainproof.ingest import DocumentError, convert
from unit.ingest.ingest_fixtures import FIXTURES, context

DOCUMENTS = sorted(
    str(p.relative_to(FIXTURES))
    for p in FIXTURES.rglob("*.json")
    if "golden" not in p.parts and "invalid" not in p.name
)
SELF_BOUND = ("provenance/",)


def _render(rel: str) -> dict[str, object]:
    raw = (FIXTURES / rel).read_bytes()
    image = None if rel.startswith(SELF_BOUND) else context(raw).image
    try:
        conv = convert(raw, context(raw, image=image))
    except DocumentError as exc:
        return {"refused": str(exc)}
    return {
        "format": conv.format.value,
        "formatVersion": conv.format_version,
        "subject": conv.subject.canonical if conv.subject else None,
        "counts": conv.counts(),
        "notes": conv.notes,
        "occurrences": conv.occurrences,
        "vex": [
            {
                "vulnerability": c.vulnerability,
                "status": c.status,
                "product": c.scope.product,
                "subcomponents": list(c.scope.subcomponents),
                "justification": c.justification,
            }
            for c in conv.vex
        ],
        "warnings": conv.warnings,
    }


@pytest.mark.parametrize("rel", DOCUMENTS)
def test_golden(rel):
    got = json.loads(json.dumps(_render(rel), sort_keys=True))
    path = FIXTURES / "golden" / (rel.replace("/", "__"))
    if os.environ.get("CHAINPROOF_REGOLD"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert path.exists(), f"no golden file {path.name}: run with CHAINPROOF_REGOLD=1 and review"
    assert got == json.loads(path.read_text())
