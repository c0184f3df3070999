"""Verification throughput per key type, and the cost of verifying one image's attestations.

Run: ``.venv/bin/python bench/bench_verify.py [--seconds 1.0]``. Keys are made fresh: PGP keys
with ``gpg`` in a temporary GNUPGHOME (skipped when gpg is missing), PKIX keys with
chainproof's own signer. Prints figures only; nothing here asserts a speed.

The floor: ``openssl speed -mr`` for the same algorithm, run as a subprocess in the same run
(verifications per second of the bare primitive; for RSA, ``openssl speed`` verifies PKCS#1
v1.5, whose cost is that of PSS to within the padding check). Each row prints its ratio to it:
how many times the floor's time one verification takes in chainproof.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
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


#: Which ``openssl speed`` algorithm is each row's floor.
FLOOR_OF = {
    "PGP ed25519 clearsigned": "ed25519",
    "PGP ed25519 detached": "ed25519",
    "PGP rsa3072 clearsigned": "rsa3072",
    "PGP rsa3072 detached": "rsa3072",
    "PKIX ECDSA_P256_SHA256": "ecdsap256",
    "PKIX RSA_PSS_2048_SHA256": "rsa2048",
    "PKIX ED25519": "ed25519",
    "DSSE envelope (P-256)": "ecdsap256",
}


def openssl_floor(seconds: float) -> dict[str, float]:
    """Verifications per second per algorithm, from ``openssl speed -mr``; {} without openssl."""
    if shutil.which("openssl") is None:
        print("openssl not found: no floor")
        return {}
    algorithms = sorted(set(FLOOR_OF.values()))
    run = subprocess.run(
        ["openssl", "speed", "-mr", "-seconds", str(max(1, round(seconds))), *algorithms],
        capture_output=True,
        text=True,
        check=True,
    )
    floor: dict[str, float] = {}
    # Machine-readable lines: +F2:i:bits:sign/s:verify/s (RSA), +F4:… (ECDSA), +F6:i:bits:name:…
    for line in run.stdout.splitlines():
        if m := re.match(r"\+F2:\d+:(\d+):[\d.]+:([\d.]+)$", line):
            floor[f"rsa{m[1]}"] = float(m[2])
        elif m := re.match(r"\+F4:\d+:256:[\d.]+:([\d.]+)$", line):
            floor["ecdsap256"] = float(m[1])
        elif m := re.match(r"\+F6:\d+:\d+:Ed25519:[\d.]+:([\d.]+)$", line):
            floor["ed25519"] = float(m[1])
    return floor


def gpg_key(home: Path, email: str, algo: str) -> tuple[GpgSigner, PgpPublicKey]:
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

        floor = openssl_floor(args.seconds)
        print(
            f"{'verification':40} {'per second':>12} {'ms each':>9} "
            f"{'openssl floor ms':>17} {'× floor':>8}"
        )
        for label, ops, ms in rows:
            base = floor.get(FLOOR_OF.get(label, ""))
            tail = f" {1000 / base:17.3f} {base / ops:8.1f}" if base else ""
            print(f"{label:40} {ops:12.0f} {ms:9.3f}{tail}")

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
        algos = ["ed25519"] if pgp_ed is not None else []
        algos += ["rsa2048", "ecdsap256"]
        if all(a in floor for a in algos):
            floor_ms = sum(1000 / floor[a] for a in algos)
            print(
                f"  openssl floor for the same {len(algos)} verifications: {floor_ms:.3f} ms; "
                f"ratio {ms / floor_ms:.1f}× the floor"
            )


if __name__ == "__main__":
    main()
