"""Real Sigstore bundles (v0.1–v0.3, tests/fixtures/sigstore/) verified offline."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from chainproof.attest.sigstore_bundle import (
    KeylessIdentity,
    bundle_envelope,
    load_trusted_root,
    verify_keyless_bundle,
)
from chainproof.domain.images import parse_image_reference
from chainproof.errors import InvalidArgument

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sigstore"
GITHUB_OAUTH = "https://github.com/login/oauth"
ACTIONS = "https://token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def staging():
    return load_trusted_root((FIXTURES / "staging.trusted_root.json").read_bytes())


@pytest.fixture(scope="module")
def production():
    return load_trusted_root((FIXTURES / "production.trusted_root.json").read_bytes())


def image_for(artifact: str):
    digest = hashlib.sha256((FIXTURES / artifact).read_bytes()).hexdigest()
    return parse_image_reference(f"registry.example/app@sha256:{digest}")


@pytest.mark.parametrize(
    ("artifact", "subject"),
    [
        ("bundle.txt", "a@tny.town"),  # v0.1
        ("bundle_v3.txt", "william@yossarian.net"),  # v0.3
    ],
)
def test_staging_message_bundles_verify_with_exact_identity(staging, artifact, subject):
    bundle = (FIXTURES / f"{artifact}.sigstore").read_bytes()
    result = verify_keyless_bundle(
        bundle,
        image_for(artifact),
        trusted_root=staging,
        identities=[KeylessIdentity(issuer=GITHUB_OAUTH, subject=subject)],
    )
    assert result.verified, result.reasons
    assert subject in result.signer


def test_v02_github_actions_bundle_verifies_with_regex_identity(production):
    bundle = (FIXTURES / "bundle_v3_github.whl.sigstore").read_bytes()
    identity = KeylessIdentity(
        issuer=ACTIONS,
        subject_regex=r"https://github\.com/trailofbits/rfc8785\.py/\.github/workflows/.*@refs/tags/v.*",
    )
    result = verify_keyless_bundle(
        bundle, image_for("bundle_v3_github.whl"), trusted_root=production, identities=[identity]
    )
    assert result.verified, result.reasons
    assert "release.yml@refs/tags/v0.1.2" in result.signer


def test_regex_must_match_the_whole_subject(production):
    bundle = (FIXTURES / "bundle_v3_github.whl.sigstore").read_bytes()
    identity = KeylessIdentity(issuer=ACTIONS, subject_regex=r"https://github\.com/trailofbits")
    result = verify_keyless_bundle(
        bundle, image_for("bundle_v3_github.whl"), trusted_root=production, identities=[identity]
    )
    assert not result.verified
    assert result.identity_mismatch


def test_untrusted_subject_is_an_identity_mismatch(staging):
    result = verify_keyless_bundle(
        (FIXTURES / "bundle.txt.sigstore").read_bytes(),
        image_for("bundle.txt"),
        trusted_root=staging,
        identities=[KeylessIdentity(issuer=GITHUB_OAUTH, subject="someone@else.example")],
    )
    assert not result.verified
    assert result.identity_mismatch
    assert "a@tny.town" in result.reasons[0]


def test_untrusted_issuer_is_refused(staging):
    result = verify_keyless_bundle(
        (FIXTURES / "bundle.txt.sigstore").read_bytes(),
        image_for("bundle.txt"),
        trusted_root=staging,
        identities=[KeylessIdentity(issuer="https://accounts.google.com", subject="a@tny.town")],
    )
    assert not result.verified
    assert result.identity_mismatch


def test_signature_over_another_digest_is_refused(staging):
    other = parse_image_reference("registry.example/app@sha256:" + "ab" * 32)
    result = verify_keyless_bundle(
        (FIXTURES / "bundle.txt.sigstore").read_bytes(),
        other,
        trusted_root=staging,
        identities=[KeylessIdentity(issuer=GITHUB_OAUTH, subject="a@tny.town")],
    )
    assert not result.verified
    assert not result.identity_mismatch


def test_another_instance_root_does_not_verify_staging_bundles(production):
    result = verify_keyless_bundle(
        (FIXTURES / "bundle_v3.txt.sigstore").read_bytes(),
        image_for("bundle_v3.txt"),
        trusted_root=production,
        identities=[KeylessIdentity(issuer=GITHUB_OAUTH, subject="william@yossarian.net")],
    )
    assert not result.verified


def test_tampered_signature_is_refused(staging):
    doc = json.loads((FIXTURES / "bundle_v3.txt.sigstore").read_bytes())
    sig = bytearray(base64.b64decode(doc["messageSignature"]["signature"]))
    sig[-1] ^= 1
    doc["messageSignature"]["signature"] = base64.b64encode(bytes(sig)).decode()
    result = verify_keyless_bundle(
        json.dumps(doc).encode(),
        image_for("bundle_v3.txt"),
        trusted_root=staging,
        identities=[KeylessIdentity(issuer=GITHUB_OAUTH, subject="william@yossarian.net")],
    )
    assert not result.verified


def test_dsse_bundle_verifies_but_its_subject_is_not_the_image(staging):
    bundle = (FIXTURES / "a.dsse.staging-rekor-v2.txt.sigstore.json").read_bytes()
    subject_digest = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
    image = parse_image_reference(f"registry.example/app@sha256:{subject_digest}")
    identity = KeylessIdentity(
        issuer=ACTIONS, subject_regex=r"https://github\.com/sigstore-conformance/.*"
    )
    result = verify_keyless_bundle(bundle, image, trusted_root=staging, identities=[identity])
    # Sigstore says who signed; the statement names the digest only under 'a.txt', which is
    # not the image's repository, so it does not count for the image.
    assert result.signer
    assert result.statement is not None
    assert result.statement.predicate_type == "https://slsa.dev/provenance/v1"
    assert not result.verified
    assert "a.txt" in result.reasons[0]


def test_no_identity_refuses(staging):
    result = verify_keyless_bundle(
        (FIXTURES / "bundle.txt.sigstore").read_bytes(),
        image_for("bundle.txt"),
        trusted_root=staging,
        identities=[],
    )
    assert not result.verified


def test_garbage_bundle_is_refused_with_a_reason(staging):
    result = verify_keyless_bundle(
        b'{"mediaType": "nope"}',
        image_for("bundle.txt"),
        trusted_root=staging,
        identities=[KeylessIdentity(issuer=GITHUB_OAUTH, subject="a@tny.town")],
    )
    assert not result.verified
    assert "not valid" in result.reasons[0]


def test_identity_needs_issuer_and_subject():
    with pytest.raises(InvalidArgument, match="issuer"):
        KeylessIdentity(subject="x")
    with pytest.raises(InvalidArgument, match="subject"):
        KeylessIdentity(issuer="x")
    with pytest.raises(InvalidArgument, match="regular expression"):
        KeylessIdentity(issuer="x", subject_regex="(")
    assert KeylessIdentity.from_dict({"issuer": "i", "subjectRegExp": "s.*"}).to_dict() == {
        "issuer": "i",
        "subjectRegExp": "s.*",
    }


def test_bundle_envelope_reads_the_dsse_of_a_real_bundle():
    envelope = bundle_envelope(
        (FIXTURES / "a.dsse.staging-rekor-v2.txt.sigstore.json").read_bytes()
    )
    assert envelope.payload_type == "application/vnd.in-toto+json"
    with pytest.raises(InvalidArgument, match="dsseEnvelope"):
        bundle_envelope((FIXTURES / "bundle.txt.sigstore").read_bytes())


def test_bad_trusted_root_is_invalid_argument():
    with pytest.raises(InvalidArgument):
        load_trusted_root(b"{}")
