"""PGP attestors as people write them (issue 9, "Also"), with keys and signatures made by gpg.

* a key ID given as the 16-hex long key ID or as a lower-case fingerprint is accepted on
  write and must then match what the key signs (Binary Authorization keeps the upper-case
  fingerprint as a PGP key's ID);
* an inline-signed or clearsigned message carries its own content, so ``serializedPayload``
  may be left out, as docs/attestations.md says.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chainproof.api.render import judge_document_json
from chainproof.attest.simple_signing import build_simple_signing
from chainproof.domain.images import parse_image_reference
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.policy import AdmissionRequest, Outcome
from unit.services.judge_fixtures import System

A = "gcr.io/acme/app@sha256:" + "a" * 64


def _realtools() -> ModuleType:
    name = "chainproof_test_realtools"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "crypto" / "realtools.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def gpg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = _realtools().make_gpg_home(tmp_path_factory.mktemp("gpg-ids"))
    home.generate("release@example.com", "ed25519")
    yield home
    home.close()


async def _setup(system: System, gpg: Any, key_id: str | None) -> str:
    # gpg stamps its signatures with the real time; the judge must not see them as future.
    system.clock.now = datetime.now(UTC) + timedelta(minutes=1)
    await system.grafeas.create_note("projects/sec", "release", note_from_json({"attestation": {}}))
    key: dict[str, Any] = {"asciiArmoredPgpPublicKey": gpg.export("release@example.com").decode()}
    if key_id is not None:
        key["id"] = key_id
    await system.resources.create_attestor(
        "projects/sec",
        "release",
        {
            "userOwnedGrafeasNote": {
                "noteReference": "projects/sec/notes/release",
                "publicKeys": [key],
            }
        },
    )
    await system.policy(
        "prod",
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": ["projects/sec/attestors/release"],
        },
    )
    return "projects/sec/attestors/release"


async def _file(system: System, signature: bytes, key_id: str, payload: bytes | None) -> None:
    attestation: dict[str, Any] = {
        "signatures": [{"signature": base64.b64encode(signature).decode(), "publicKeyId": key_id}]
    }
    if payload is not None:
        attestation["serializedPayload"] = base64.b64encode(payload).decode()
    await system.grafeas.create_occurrence(
        "projects/app",
        occurrence_from_json(
            {"resourceUri": A, "noteName": "projects/sec/notes/release", "attestation": attestation}
        ),
    )


@pytest.mark.parametrize("form", ["long-key-id", "lower-case-fingerprint", "0x-long-key-id"])
async def test_pgp_key_ids_people_write_are_normalised(gpg: Any, form: str) -> None:
    system = System()
    fpr = gpg.fingerprint("release@example.com")
    given = {
        "long-key-id": fpr[-16:],
        "lower-case-fingerprint": fpr.lower(),
        "0x-long-key-id": "0x" + fpr[-16:].lower(),
    }[form]
    name = await _setup(system, gpg, given)
    stored = judge_document_json(await system.resources.get_attestor(name))
    assert stored["userOwnedGrafeasNote"]["publicKeys"][0]["id"] == fpr
    payload = build_simple_signing(parse_image_reference(A))
    await _file(system, gpg.detach_sign("release@example.com", payload), given, payload)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.ALLOWED, decision.explain()


@pytest.mark.parametrize("style", ["inline", "clearsigned"])
async def test_pgp_messages_carrying_their_content_need_no_serialized_payload(
    gpg: Any, style: str
) -> None:
    system = System()
    await _setup(system, gpg, None)
    fpr = gpg.fingerprint("release@example.com")
    payload = build_simple_signing(parse_image_reference(A))
    if style == "inline":
        message = gpg.sign_inline("release@example.com", payload)
    else:
        message = gpg.clearsign("release@example.com", payload)
    await _file(system, message, fpr, None)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.ALLOWED, decision.explain()


async def test_attestors_stored_with_an_old_key_id_spelling_still_match(gpg: Any) -> None:
    """An attestor stored before IDs were normalised keeps working."""
    system = System()
    name = await _setup(system, gpg, None)
    fpr = gpg.fingerprint("release@example.com")
    async with system.store.session() as s:
        stored = await s.documents.get("sec", "attestors", "release")
        assert stored is not None
        data = json.loads(json.dumps(stored.data))
        data["userOwnedGrafeasNote"]["publicKeys"][0]["id"] = fpr[-16:].lower()
        await s.documents.put(replace(stored, data=data))
    system.changes.configuration_changed()
    assert (
        judge_document_json(await system.resources.get_attestor(name))["userOwnedGrafeasNote"][
            "publicKeys"
        ][0]["id"]
        == fpr[-16:].lower()
    )
    payload = build_simple_signing(parse_image_reference(A))
    await _file(system, gpg.detach_sign("release@example.com", payload), fpr, payload)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.ALLOWED, decision.explain()
