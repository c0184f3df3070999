"""Verification throughput per key type, and the cost of verifying one image's attestations.

Run: ``.venv/bin/python bench/bench_verify.py [--seconds 1.0]``. Keys are made fresh: PGP keys
with ``gpg`` in a temporary GNUPGHOME (skipped when gpg is missing), PKIX keys with
chainproof's own signer. Prints figures only; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from chainproof.attest import (
    INTOTO_PAYLOAD_TYPE,
    SLSA_PROVENANCE_V1,
    SignedAttestation,
    build_image_url_payload,
    build_simple_signing,
    build_statement,
    verify_attestation,
)
from chainproof.crypto import DsseEnvelope, PgpPublicKey, PublicKey, verify_envelope
from chainproof.crypto.gpg_signer import GpgSigner
from chainproof.crypto.signing import PkixSigner, generate_pkix_key, sign_envelope
from chainproof.domain.images import parse_image_reference

IMAGE = parse_image_reference("gcr.io/image-signing/payment@sha256:" + "a" * 64)


def rate(fn: Callable[[], object], seconds: float) -> tuple[float, float]:
    """(operations per second, milliseconds per operation) over about ``seconds``."""
    fn()  # warm up
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        fn()
        count += 1
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - start
    return count / elapsed, 1000 * elapsed / count


def gpg_key(home: Path, email: str, algo: str) -> tuple[GpgSigner, PgpPublicKey]:
    import subprocess

    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-generate-key", f"Bench <{email}>", algo,
         "sign", "never"],
        env={"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
    )  # fmt: skip
    signer = GpgSigner(email, gnupghome=str(home))
    return signer, PgpPublicKey.from_armored(signer.export_public_key())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    now = datetime.now(UTC)
    data = build_simple_signing(IMAGE)
    rows: list[tuple[str, float, float]] = []

    def measure(label: str, key: PublicKey, signature: bytes, signed: bytes | None) -> None:
        check = key.verify(signature, signed, now=now)
        if not check.verified:
            raise SystemExit(f"{label}: fixture does not verify: {check.reason}")
        ops, ms = rate(lambda: key.verify(signature, signed, now=now), args.seconds)
        rows.append((label, ops, ms))

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "gnupg"
        home.mkdir(mode=0o700)
        pgp_ed = pgp_rsa = None
        if shutil.which("gpg"):
            pgp_ed = gpg_key(home, "ed@bench.example", "ed25519")
            pgp_rsa = gpg_key(home, "rsa@bench.example", "rsa3072")
            url = build_image_url_payload(IMAGE)
            for label, (gpg, pgp_key) in (("PGP ed25519", pgp_ed), ("PGP rsa3072", pgp_rsa)):
                measure(f"{label} clearsigned", pgp_key, gpg.clearsign(url), None)
                measure(f"{label} detached", pgp_key, gpg.sign_detached(data), data)
        else:
            print("gpg not found: PGP rows skipped")

        pkix = {
            name: PkixSigner.from_pem(generate_pkix_key(name).private_pem, name, key_id=name)
            for name in ("ECDSA_P256_SHA256", "RSA_PSS_2048_SHA256", "ED25519")
        }
        for name, pkix_signer in pkix.items():
            measure(f"PKIX {name}", pkix_signer.public_key, pkix_signer.sign(data), data)

        statement = build_statement(IMAGE, SLSA_PROVENANCE_V1, {"buildDefinition": {}})
        p256 = pkix["ECDSA_P256_SHA256"]
        envelope = sign_envelope(statement, INTOTO_PAYLOAD_TYPE, [p256])
        keys: list[PublicKey] = [p256.public_key]
        ops, ms = rate(lambda: verify_envelope(envelope, keys, now=now), args.seconds)
        rows.append(("DSSE envelope (P-256)", ops, ms))

        print(f"{'verification':40} {'per second':>12} {'ms each':>9}")
        for label, ops, ms in rows:
            print(f"{label:40} {ops:12.0f} {ms:9.3f}")

        # One image carrying three attestations from three attestors, each verified in full
        # (signature, then payload against the trusted digest).
        trio: list[tuple[SignedAttestation | DsseEnvelope, list[PublicKey], str]] = []
        if pgp_ed is not None:
            gpg_signer, key = pgp_ed
            clearsigned = gpg_signer.clearsign(build_image_url_payload(IMAGE))
            trio.append((SignedAttestation.of(b"", [(clearsigned, key.key_id)]), [key], "PGP"))
        rsa = pkix["RSA_PSS_2048_SHA256"]
        trio.append(
            (SignedAttestation.of(data, [(rsa.sign(data), rsa.key_id)]), [rsa.public_key], "PKIX")
        )
        trio.append((envelope, [p256.public_key], "DSSE"))

        def verify_image() -> None:
            for attestation, trusted, _ in trio:
                result = verify_attestation(IMAGE, attestation, trusted, now=now)
                if not result.verified:
                    raise SystemExit(f"bench attestation failed: {result.reasons}")

        ops, ms = rate(verify_image, args.seconds)
        kinds = " + ".join(kind for _, _, kind in trio)
        print(f"\none image, three attestations ({kinds}): {ms:.3f} ms ({ops:.0f} images/s)")


if __name__ == "__main__":
    main()
