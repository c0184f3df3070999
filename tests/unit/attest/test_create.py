"""attest/create.py: the payload for a digest, signed as its format asks, verifies as the judge
verifies it; OpenPGP gets the signature shape each format needs."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from chainproof.attest.create import PayloadFormat, attestation_occurrence
from chainproof.attest.grafeas import attestation_from_occurrence
from chainproof.attest.predicates import SLSA_PROVENANCE_V1
from chainproof.attest.verify import verify_attestation
from chainproof.crypto.keys import KeySpec, load_public_key
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.domain.messages import occurrence_from_json
from chainproof.errors import InvalidArgument

from .conftest import IMAGE_A, IMAGE_B

NOW = datetime(2026, 11, 22, tzinfo=UTC)


@pytest.fixture(scope="module")
def key() -> tuple[PkixSigner, object]:
    made = generate_pkix_key()
    signer = PkixSigner.from_pem(made.private_pem, key_id="qa")
    public = load_public_key(
        KeySpec("PKIX", made.public_pem, key_id="qa", algorithm="ECDSA_P256_SHA256")
    )
    return signer, public


def _verify(occurrence: dict, image: ImageReference, public: object) -> bool:
    signed = attestation_from_occurrence(occurrence_from_json(occurrence))
    result = verify_attestation(image, signed, [public], now=NOW)
    return result.verified


@pytest.mark.parametrize("fmt", list(PayloadFormat))
def test_every_format_verifies_for_its_image_only(fmt: PayloadFormat, key) -> None:
    signer, public = key
    extra = (
        {"predicate_type": SLSA_PROVENANCE_V1, "predicate": {"buildType": "x"}}
        if fmt is PayloadFormat.IN_TOTO
        else {}
    )
    occurrence = attestation_occurrence(
        IMAGE_A, fmt, signer, note_name="projects/p/notes/qa", **extra
    )
    assert occurrence["noteName"] == "projects/p/notes/qa"
    assert occurrence["resourceUri"].startswith("https://")
    assert ("dsseAttestation" in occurrence) is (fmt is PayloadFormat.IN_TOTO)
    assert _verify(occurrence, IMAGE_A, public)
    assert not _verify(occurrence, IMAGE_B, public)


class FakePgp:
    """Our own port (OpenPgpSigner), recording which signature shape was asked for."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def fingerprint(self) -> str:
        return "ABCD" * 10

    def sign_inline(self, data: bytes) -> bytes:
        self.calls.append("inline")
        return b"inline:" + data

    def clearsign(self, data: bytes) -> bytes:
        self.calls.append("clearsign")
        return b"clear:" + data

    def sign_detached(self, data: bytes, *, armor: bool) -> bytes:
        self.calls.append(f"detached armor={armor}")
        return b"detached"


@pytest.mark.parametrize(
    ("fmt", "shape"),
    [
        (PayloadFormat.SIMPLE_SIGNING, "inline"),
        (PayloadFormat.IMAGE_URL, "clearsign"),
        (PayloadFormat.IN_TOTO, "detached armor=False"),
    ],
)
def test_openpgp_signs_in_the_shape_each_format_needs(fmt: PayloadFormat, shape: str) -> None:
    pgp = FakePgp()
    extra = {"predicate_type": SLSA_PROVENANCE_V1, "predicate": {}} if shape.startswith("d") else {}
    occurrence = attestation_occurrence(IMAGE_A, fmt, pgp, **extra)
    assert pgp.calls == [shape]
    if fmt is PayloadFormat.IN_TOTO:
        assert occurrence["dsseAttestation"]["envelope"]["signatures"][0]["keyid"] == "ABCD" * 10
    else:
        (sig,) = occurrence["attestation"]["signatures"]
        assert sig["publicKeyId"] == "ABCD" * 10
        assert base64.b64decode(sig["signature"]).startswith(
            b"inline:" if shape == "inline" else b"clear:"
        )


def test_the_resource_uri_can_be_the_plain_reference(key) -> None:
    signer, _ = key
    image = IMAGE_A
    occurrence = attestation_occurrence(
        image, PayloadFormat.SIMPLE_SIGNING, signer, resource_uri=image.canonical
    )
    assert occurrence["resourceUri"] == image.canonical
    payload = json.loads(base64.b64decode(occurrence["attestation"]["serializedPayload"]))
    assert payload["critical"]["image"]["docker-manifest-digest"] == image.digest


@pytest.mark.parametrize(
    ("image", "fmt", "extra", "says"),
    [
        (
            parse_image_reference("gcr.io/acme/app:1.0"),
            PayloadFormat.SIMPLE_SIGNING,
            {},
            "has no digest",
        ),
        (IMAGE_A, PayloadFormat.IN_TOTO, {}, "needs a predicate type and a predicate"),
        (IMAGE_A, PayloadFormat.IMAGE_URL, {"predicate": {}}, "signs the digest alone"),
    ],
)
def test_what_cannot_be_signed_is_refused(image: ImageReference, fmt, extra, says, key) -> None:
    signer, _ = key
    with pytest.raises(InvalidArgument, match=says):
        attestation_occurrence(image, fmt, signer, **extra)
