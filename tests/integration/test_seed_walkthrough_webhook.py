"""Seed 000 end to end, the way its reader would do it, through the admission webhook over
HTTPS and with the real gpg:

1. certificates from `chainproof webhook certs`; the server serves TLS with them and the
   client trusts only the generated CA (as the API server does through caBundle);
2. a gpg key for qa_bob@example.com; the walkthrough's v1alpha1 note.json; an attestor
   holding the armored public key; a policy requiring that attestor;
3. the payment pod → DENIED, "no attestation … for gcr.io/hightowerlabs/payment@sha256:aba4…";
4. `gpg --clearsign` of image-digest.txt, the occurrence built as the seed's heredoc does it
   (the raw, multi-line armored signature pasted inside a JSON string), posted to v1alpha1;
5. the same pod → ALLOWED.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from live import live_server

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")

IMAGE = (
    "gcr.io/hightowerlabs/payment@sha256:"
    "aba48d60ba4410ec921f9d2e8169236c57660d121f9430dc9758d754eec8f887"
)
ADMISSION_PROJECT = "production"

NOTE_JSON = """{
  "name": "projects/image-signing/notes/qa",
  "shortDescription": "Image Signing Authority",
  "kind": "ATTESTATION_AUTHORITY",
  "attestationAuthority": {
    "hint": {
      "humanReadableName": "qa"
    }
  }
}
"""

PAYMENT_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "payment"},
    "spec": {"containers": [{"name": "payment", "image": IMAGE}]},
}


def chainproof(*args: str) -> str:
    """Run the chainproof command line as a user would."""
    script = Path(sys.executable).with_name("chainproof")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "chainproof.cli.main"]
    out = subprocess.run([*cmd, *args], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture
def gnupg(tmp_path: Path) -> Iterator[dict[str, str]]:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    yield env
    subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, capture_output=True)


def gpg(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    out = subprocess.run(
        ["gpg", "--batch", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def admission_review() -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "payment",
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin"},
            "object": PAYMENT_POD,
            "oldObject": None,
            "dryRun": False,
        },
    }


def test_seed_walkthrough_over_https_with_gpg(tmp_path: Path, gnupg: dict[str, str]) -> None:
    # 1. Serving certificate for the webhook's Service, plus loopback for this test.
    certs = tmp_path / "certs"
    chainproof(
        "webhook", "certs",
        "--service", "chainproof",
        "--namespace", "chainproof",
        "--out", str(certs),
        "--san", "127.0.0.1",
    )  # fmt: skip
    tls = {"ssl_certfile": str(certs / "tls.crt"), "ssl_keyfile": str(certs / "tls.key")}
    trust = ssl.create_default_context(cafile=str(certs / "ca.crt"))

    # 2. The QA signer's key, as the walkthrough makes it.
    gpg(
        gnupg,
        "--passphrase",
        "",
        "--quick-generate-key",
        "qa_bob@example.com",
        "ed25519",
        "sign",
        "never",
    )
    public_key = gpg(gnupg, "--armor", "--export", "qa_bob@example.com")
    fingerprint = next(
        line.split(":")[9]
        for line in gpg(gnupg, "--with-colons", "--list-keys", "qa_bob@example.com").splitlines()
        if line.startswith("fpr:")
    )

    with (
        live_server(grpc_enabled=False, ssl=tls, admission={"project": ADMISSION_PROJECT}) as srv,
        httpx.Client(base_url=srv.base_url, verify=trust, timeout=20) as client,
    ):
        assert srv.base_url.startswith("https://")
        r = client.post(
            "/v1alpha1/projects/image-signing/notes?noteId=qa",
            content=NOTE_JSON,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 200, r.text
        r = client.post(
            "/v1/projects/image-signing/attestors",
            params={"attestorId": "qa"},
            json={
                "userOwnedGrafeasNote": {
                    "noteReference": "projects/image-signing/notes/qa",
                    "publicKeys": [{"id": fingerprint, "asciiArmoredPgpPublicKey": public_key}],
                }
            },
        )
        assert r.status_code == 200, r.text
        r = client.put(
            f"/v1/projects/{ADMISSION_PROJECT}/policy",
            json={
                "defaultAdmissionRule": {
                    "evaluationMode": "REQUIRE_ATTESTATION",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                    "requireAttestationsBy": ["projects/image-signing/attestors/qa"],
                }
            },
        )
        assert r.status_code == 200, r.text

        # 3. Before the QA signature: refused, naming the image.
        body = admission_review()
        answer = client.post("/webhook/admission?timeout=10s", json=body).json()
        response = answer["response"]
        assert response["uid"] == body["request"]["uid"]
        assert response["allowed"] is False
        message = response["status"]["message"]
        assert f"no attestation by projects/image-signing/attestors/qa for {IMAGE}" in message
        assert "none found" in message

        # 4. Sign the digest and upload the signature the walkthrough's way.
        work = tmp_path / "work"
        work.mkdir()
        (work / "image-digest.txt").write_text(IMAGE + "\n")
        gpg(
            gnupg,
            "-u", "qa_bob@example.com",
            "--armor", "--clearsign",
            "--output=signature.gpg",
            "image-digest.txt",
            cwd=work,
        )  # fmt: skip
        # $(cat file) drops trailing newlines; nothing else is escaped.
        digest_text = (work / "image-digest.txt").read_text().rstrip("\n")
        signature = (work / "signature.gpg").read_text().rstrip("\n")
        occurrence_json = f"""{{
  "resourceUrl": "{digest_text}",
  "noteName": "projects/image-signing/notes/qa",
  "attestation": {{
    "pgpSignedAttestation": {{
       "signature": "{signature}",
       "contentType": "application/vnd.gcr.image.url.v1",
       "pgpKeyId": "{fingerprint}"
    }}
  }}
}}
"""
        assert "\n" in signature  # really the raw multi-line armor inside a JSON string
        r = client.post(
            "/v1alpha1/projects/image-signing/occurrences",
            content=occurrence_json,
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 200, r.text

        # 5. The same review is admitted now.
        body = admission_review()
        response = client.post("/webhook/admission?timeout=10s", json=body).json()["response"]
        assert response["uid"] == body["request"]["uid"]
        assert response["allowed"] is True, response
        assert response["auditAnnotations"]["outcome"] == "allowed"
