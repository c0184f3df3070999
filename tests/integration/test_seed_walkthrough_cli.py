"""The seed 000 walkthrough (Kubernetes blog, 2017: "Securing Software Supply Chain with
Grafeas") end to end, with real GnuPG, then verified with ``chainproof attestation verify``.

Step by step as the walkthrough does it: a key made by ``gpg --quick-generate-key``, the
``qa`` ATTESTATION_AUTHORITY note created over REST with the v1alpha1 ``note.json``, the image
digest reference clearsigned with ``gpg --clearsign``, and ``occurrence.json`` built by the
shell heredoc (the armored signature pasted raw, newlines and all, inside a JSON string) and
POSTed to ``/v1alpha1``. Only then does chainproof's CLI come in: an attestor holding the
exported public key, and local verification against the digest given on the command line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from chainproof.cli.main import _register_groups, app
from live import LiveServer, live_server

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="needs GnuPG (gpg)")

SEED_DIGEST = "sha256:aba48d60ba4410ec921f9d2e8169236c57660d121f9430dc9758d754eec8f887"
SEED_IMAGE = f"gcr.io/hightowerlabs/payment@{SEED_DIGEST}"
OTHER_DIGEST = "sha256:" + "0" * 63 + "1"
OTHER_IMAGE = f"gcr.io/hightowerlabs/payment@{OTHER_DIGEST}"
QA = "qa_bob@example.com"

#: note.json of the walkthrough, as written there (Grafeas v1alpha1).
NOTE_JSON = {
    "name": "projects/image-signing/notes/qa",
    "shortDescription": "Image Signing Authority",
    "kind": "ATTESTATION_AUTHORITY",
    "attestationAuthority": {"hint": {"humanReadableName": "qa"}},
}

#: The walkthrough's heredoc: `cat > occurrence.json <<EOF … EOF`, variables substituted.
OCCURRENCE_HEREDOC = """{
  "resourceUrl": "$(cat image-digest.txt)",
  "noteName": "projects/image-signing/notes/qa",
  "attestation": {
    "pgpSignedAttestation": {
       "signature": "$(cat signature.gpg)",
       "contentType": "application/vnd.gcr.image.url.v1",
       "pgpKeyId": "${GPG_KEY_ID}"
    }
  }
}
"""

_register_groups()
runner = CliRunner()


@pytest.fixture(scope="module")
def gnupghome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg(home, "--batch", "--passphrase", "", "--quick-generate-key", QA, "ed25519", "sign", "never")
    try:
        yield home
    finally:
        # Stop the agent this test started; it would otherwise outlive the temporary home.
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"],
            env={**os.environ, "GNUPGHOME": str(home)},
            capture_output=True,
            check=False,
        )


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(grpc_enabled=False) as live:
        yield live


def gpg(home: Path, *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["gpg", "--batch", "--yes", *args],
        env={**os.environ, "GNUPGHOME": str(home)},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def fingerprint(home: Path) -> str:
    listing = gpg(home, "--with-colons", "--list-keys", QA)
    return next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))


def cli(server: LiveServer, *args: str) -> Result:
    return runner.invoke(app, [*args, "--server", server.base_url])


def heredoc_occurrence(workdir: Path, key_id: str) -> str:
    """What the shell writes: the files' contents pasted into the template verbatim."""
    return (
        OCCURRENCE_HEREDOC.replace(
            "$(cat image-digest.txt)", (workdir / "image-digest.txt").read_text().strip()
        )
        .replace("$(cat signature.gpg)", (workdir / "signature.gpg").read_text().rstrip("\n"))
        .replace("${GPG_KEY_ID}", key_id)
    )


def sign_and_upload(
    server: LiveServer, home: Path, workdir: Path, signed_image: str, filed_under: str
) -> dict[str, str]:
    """Clearsign ``signed_image`` as the walkthrough does; file it under ``filed_under``."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "image-digest.txt").write_text(signed_image + "\n")
    gpg(
        home, "-u", QA, "--armor", "--clearsign", "--output=signature.gpg", "image-digest.txt",
        cwd=workdir,
    )  # fmt: skip
    body = heredoc_occurrence(workdir, fingerprint(home))
    if filed_under != signed_image:
        body = body.replace(f'"resourceUrl": "{signed_image}"', f'"resourceUrl": "{filed_under}"')
    (workdir / "occurrence.json").write_text(body)
    # curl -X POST 'http://…/v1alpha1/projects/image-signing/occurrences' -d @occurrence.json
    # (curl -d strips no newlines from a file read with @, and sends a form content type)
    response = httpx.post(
        f"{server.base_url}/v1alpha1/projects/image-signing/occurrences",
        content=(workdir / "occurrence.json").read_bytes(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    created: dict[str, str] = response.json()
    return created


def test_seed_000_walkthrough_verified_by_the_cli(
    server: LiveServer, gnupghome: Path, tmp_path: Path
) -> None:
    # 1. Set up: export the signer's public key; create the 'qa' note over REST (v1alpha1).
    key_id = fingerprint(gnupghome)
    public_key = tmp_path / f"{key_id}.pub"
    public_key.write_text(gpg(gnupghome, "--armor", "--export", QA))
    note = httpx.post(
        f"{server.base_url}/v1alpha1/projects/image-signing/notes?noteId=qa",
        content=json.dumps(NOTE_JSON).encode(),
    )
    assert note.status_code == 200, note.text
    assert note.json()["kind"] == "ATTESTATION"

    # The attestor holding the QA key, on the walkthrough's note (which already exists).
    created = cli(
        server,
        "attestor",
        "create",
        "image-signing/qa",
        "--note",
        "projects/image-signing/notes/qa",
        "--pgp-key",
        str(public_key),
    )
    assert created.exit_code == 0, created.output
    assert "created note" not in created.stdout
    assert key_id in created.stdout

    # 2. Before the attestation: nothing vouches for the image.
    before = cli(
        server, "attestation", "verify", "--image", SEED_IMAGE, "--attestor",
        "projects/image-signing/attestors/qa",
    )  # fmt: skip
    assert before.exit_code == 1
    assert "no attestations of projects/image-signing/notes/qa" in before.stdout

    # 3 + 4. Sign the digest and upload the occurrence exactly as the walkthrough does.
    occurrence = sign_and_upload(server, gnupghome, tmp_path / "qa", SEED_IMAGE, SEED_IMAGE)
    assert occurrence["kind"] == "ATTESTATION"
    assert occurrence["attestation"]["signatures"][0]["publicKeyId"] == key_id  # type: ignore[index]

    # 5. Verified by the CLI, with the digest from the command line.
    after = cli(
        server, "attestation", "verify", "--image", SEED_IMAGE, "--attestor",
        "projects/image-signing/attestors/qa",
    )  # fmt: skip
    assert after.exit_code == 0, after.output
    assert f"verified  {occurrence['name']}: image-url signed by key {key_id}" in after.stdout

    listed = cli(
        server, "attestation", "list", "--image", SEED_IMAGE, "--project", "image-signing", "--json"
    )
    assert [o["name"] for o in json.loads(listed.stdout)["occurrences"]] == [occurrence["name"]]


def test_a_signature_over_another_digest_does_not_count(
    server: LiveServer, gnupghome: Path, tmp_path: Path
) -> None:
    _ensure_attestor(server, gnupghome, tmp_path)
    # A real signature by the QA key, but over the seed image's digest, filed for another
    # digest of the same repository: replaying it must not vouch for OTHER_IMAGE.
    sign_and_upload(server, gnupghome, tmp_path / "replay", SEED_IMAGE, OTHER_IMAGE)
    result = cli(
        server, "attestation", "verify", "--image", OTHER_IMAGE, "--attestor", "image-signing/qa"
    )
    assert result.exit_code == 1, result.output
    assert f"payload names {SEED_DIGEST} but the image is {OTHER_DIGEST}" in result.stdout

    report = json.loads(
        cli(
            server, "attestation", "verify", "--image", OTHER_IMAGE, "--attestor",
            "image-signing/qa", "--json",
        ).stdout
    )  # fmt: skip
    assert report["verified"] is False
    (attempt,) = report["attestations"]
    assert attempt["keyIds"] == [fingerprint(gnupghome)]  # the signature itself was genuine


def test_cli_signs_with_gpg_in_every_format(
    server: LiveServer, gnupghome: Path, tmp_path: Path
) -> None:
    """`attestation create --gpg-key`: inline-signed simple signing, clearsigned image URL,
    and a DSSE envelope signed by gpg; each verifies against the same PGP attestor."""
    _ensure_attestor(server, gnupghome, tmp_path)
    (tmp_path / "scan.json").write_text(json.dumps({"scanner": {"uri": "grype"}}))
    formats = {
        "simple-signing": ("gcr.io/hightowerlabs/payment@sha256:" + "2" * 64, []),
        "image-url": ("gcr.io/hightowerlabs/payment@sha256:" + "3" * 64, []),
        "in-toto": (
            "gcr.io/hightowerlabs/payment@sha256:" + "4" * 64,
            ["--predicate-type", "vuln", "--predicate", str(tmp_path / "scan.json")],
        ),
    }
    for fmt, (image, extra) in formats.items():
        made = cli(
            server, "attestation", "create", "--image", image, "--gpg-key", QA,
            "--gnupghome", str(gnupghome), "--format", fmt, *extra,
            "--note", "projects/image-signing/notes/qa", "--upload",
        )  # fmt: skip
        assert made.exit_code == 0, (fmt, made.output)
        verified = cli(
            server, "attestation", "verify", "--image", image, "--attestor", "image-signing/qa",
            "--json",
        )  # fmt: skip
        assert verified.exit_code == 0, (fmt, verified.output)
        (result,) = json.loads(verified.stdout)["attestations"]
        assert result["format"] == fmt
        assert result["keyIds"] == [fingerprint(gnupghome)]


def test_gpg_errors_are_reported(gnupghome: Path) -> None:
    result = runner.invoke(
        app,
        ["attestation", "create", "--image", SEED_IMAGE, "--gpg-key", "nobody@example.com",
         "--gnupghome", str(gnupghome)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "gpg failed" in result.stderr


def _ensure_attestor(server: LiveServer, home: Path, tmp_path: Path) -> None:
    got = cli(server, "attestor", "get", "image-signing/qa")
    if got.exit_code == 0:
        return
    httpx.post(
        f"{server.base_url}/v1alpha1/projects/image-signing/notes?noteId=qa",
        content=json.dumps(NOTE_JSON).encode(),
    )
    public_key = tmp_path / "qa.pub"
    public_key.write_text(gpg(home, "--armor", "--export", QA))
    made = cli(
        server, "attestor", "create", "image-signing/qa", "--note",
        "projects/image-signing/notes/qa", "--pgp-key", str(public_key),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
