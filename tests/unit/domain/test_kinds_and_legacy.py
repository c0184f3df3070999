"""Kinds are derived from details; required fields are all reported; v1alpha1 shapes upgrade."""

import base64

import pytest

from chainproof.domain.kinds import derive_kind, note_problems, occurrence_problems
from chainproof.domain.legacy import clearsigned_text, upgrade_note_json, upgrade_occurrence_json
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.errors import InvalidArgument

D = "sha256:" + "ef" * 32


def test_kind_is_derived_and_contradictions_refused() -> None:
    note = note_from_json({"build": {"builderVersion": "1"}})
    assert derive_kind(note, oneof="type", what="note") == "BUILD"
    liar = note_from_json({"kind": "VULNERABILITY", "build": {"builderVersion": "1"}})
    with pytest.raises(InvalidArgument, match="says kind VULNERABILITY but carries build"):
        derive_kind(liar, oneof="type", what="note")
    with pytest.raises(InvalidArgument, match="has no details"):
        derive_kind(note_from_json({}), oneof="type", what="note")


def test_every_violation_is_listed() -> None:
    occ = occurrence_from_json({"vulnerability": {"packageIssue": [{}]}})
    problems = occurrence_problems(occ)
    assert "resourceUri is required: the artifact this is about" in problems
    assert any(p.startswith("noteName is required") for p in problems)
    assert "vulnerability.packageIssue[0].affectedCpeUri is required" in problems
    assert "vulnerability.packageIssue[0].affectedPackage is required" in problems


@pytest.mark.parametrize(
    ("details", "missing"),
    [
        ({"attestation": {}}, "attestation.serializedPayload"),
        (
            {"attestation": {"serializedPayload": "eA==", "signatures": [{"signature": "eA=="}]}},
            "attestation.signatures[0].publicKeyId",
        ),
        ({"dsseAttestation": {}}, "dsseAttestation.envelope"),
        ({"deployment": {}}, "deployment.deployTime"),
        ({"image": {}}, "image.fingerprint"),
        ({"package": {}}, "package.name"),
    ],
)
def test_occurrence_required_fields(details: dict, missing: str) -> None:
    occ = occurrence_from_json({"resourceUri": "x", "noteName": "projects/p/notes/n", **details})
    assert any(p.startswith(missing) for p in occurrence_problems(occ))


def test_note_required_fields() -> None:
    assert note_problems(note_from_json({"build": {}})) == ["build.builderVersion is required"]
    assert note_problems(note_from_json({"attestation": {"hint": {}}})) == [
        "attestation.hint.humanReadableName is required"
    ]
    assert note_problems(note_from_json({"attestation": {}})) == []


def test_unknown_fields_and_wrong_types_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="nosuch"):
        note_from_json({"nosuch": 1})
    with pytest.raises(InvalidArgument, match="grafeas.v1.Note"):
        note_from_json({"shortDescription": 5})
    with pytest.raises(InvalidArgument, match="must be a JSON object"):
        note_from_json([1, 2])


SIGNED = """-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

gcr.io/x/app@{D}
- -- dash escaped
-----BEGIN PGP SIGNATURE-----

iHUEARYKAB0WIQ
-----END PGP SIGNATURE-----
""".replace("{D}", D)


def test_clearsigned_text_unescapes_dashes() -> None:
    assert clearsigned_text(SIGNED) == f"gcr.io/x/app@{D}\n-- dash escaped"
    assert clearsigned_text("not signed") is None


def test_seed_walkthrough_shapes_upgrade_to_v1() -> None:
    note = upgrade_note_json(
        {
            "name": "projects/image-signing/notes/qa",
            "shortDescription": "Image Signing Authority",
            "kind": "ATTESTATION_AUTHORITY",
            "attestationAuthority": {"hint": {"humanReadableName": "qa"}},
        }
    )
    assert (
        note["attestation"] == {"hint": {"humanReadableName": "qa"}}
        and note["kind"] == "ATTESTATION"
    )
    note_from_json(note)  # parses as v1

    occ = upgrade_occurrence_json(
        {
            "resourceUrl": f"gcr.io/x/app@{D}",
            "noteName": "projects/image-signing/notes/qa",
            "attestation": {
                "pgpSignedAttestation": {
                    "signature": SIGNED,
                    "contentType": "application/vnd.gcr.image.url.v1",
                    "pgpKeyId": "ABCDEF",
                }
            },
        }
    )
    parsed = occurrence_from_json(occ)
    assert parsed.resource_uri == f"gcr.io/x/app@{D}"
    assert parsed.attestation.serialized_payload.decode().startswith(f"gcr.io/x/app@{D}")
    assert parsed.attestation.signatures[0].signature == SIGNED.encode()
    assert parsed.attestation.signatures[0].public_key_id == "ABCDEF"
    assert base64.b64decode(occ["attestation"]["signatures"][0]["signature"]) == SIGNED.encode()


def test_legacy_pgp_without_key_id_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="pgpKeyId is required"):
        upgrade_occurrence_json({"attestation": {"pgpSignedAttestation": {"signature": SIGNED}}})
