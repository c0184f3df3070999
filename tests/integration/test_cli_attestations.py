"""The CLI's key, attestor and attestation commands against a live chainproof server.

Every command runs through Typer's CliRunner (the real command tree, as ``chainproof`` builds
it) and talks REST to a real server on loopback; verification happens in the CLI process.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from chainproof.cli.main import _register_groups, app
from live import LiveServer, live_server

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
IMAGE_A = f"gcr.io/acme/app@{DIGEST_A}"
IMAGE_B = f"gcr.io/acme/app@{DIGEST_B}"

_register_groups()
runner = CliRunner()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(grpc_enabled=False) as live:
        yield live


def cli(server: LiveServer | None, *args: str) -> Result:
    extra = ["--server", server.base_url] if server is not None else []
    return runner.invoke(app, [*args, *extra])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.output)
    return result


def make_key(tmp_path: Path, name: str, algorithm: str = "ECDSA_P256_SHA256") -> tuple[Path, str]:
    result = ok(
        runner.invoke(
            app,
            ["keys", "generate", "--out", str(tmp_path / name), "--algorithm", algorithm, "--json"],
        )
    )
    info = json.loads(result.stdout)
    return tmp_path / name, info["keyId"]


def make_attestor(server: LiveServer, tmp_path: Path, project: str, name: str, alg: str) -> Path:
    prefix, _ = make_key(tmp_path, name, alg)
    ok(
        cli(
            server,
            "attestor",
            "create",
            f"{project}/{name}",
            "--note",
            f"projects/{project}/notes/{name}",
            "--pkix-key",
            f"{prefix}.pub",
            "--algorithm",
            alg,
        )
    )
    return prefix


def test_keys_generate_writes_a_private_key_only_the_owner_can_read(tmp_path: Path) -> None:
    result = ok(runner.invoke(app, ["keys", "generate", "--out", str(tmp_path / "qa")]))
    private, public = tmp_path / "qa.key", tmp_path / "qa.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert "ECDSA_P256_SHA256" in result.stdout
    assert "sha256:" in result.stdout

    again = runner.invoke(app, ["keys", "generate", "--out", str(tmp_path / "qa")])
    assert again.exit_code == 2
    assert "already exists" in again.stderr


@pytest.mark.parametrize(
    "algorithm", ["ED25519", "RSA_SIGN_PKCS1_3072_SHA256", "ECDSA_P384_SHA384"]
)
def test_keys_generate_other_algorithms(tmp_path: Path, algorithm: str) -> None:
    _, key_id = make_key(tmp_path, "k", algorithm)
    assert key_id.startswith("sha256:")


def test_keys_generate_refuses_an_unknown_algorithm(tmp_path: Path) -> None:
    result = runner.invoke(app, ["keys", "generate", "--out", str(tmp_path / "k"), "-a", "DSA"])
    assert result.exit_code == 2
    assert "unknown PKIX signature algorithm 'DSA'" in result.stderr
    assert not (tmp_path / "k.key").exists()


def test_attestor_create_makes_the_note_and_get_list_delete(
    server: LiveServer, tmp_path: Path
) -> None:
    prefix, key_id = make_key(tmp_path, "qa")
    result = ok(
        cli(
            server,
            "attestor",
            "create",
            "crud/qa",
            "--note",
            "projects/crud/notes/qa",
            "--pkix-key",
            f"{prefix}.pub",
            "--description",
            "QA sign-off",
        )
    )
    assert "created note projects/crud/notes/qa" in result.stdout
    assert "created attestor projects/crud/attestors/qa" in result.stdout
    assert key_id in result.stdout

    got = json.loads(ok(cli(server, "attestor", "get", "crud/qa", "--json")).stdout)
    key = got["userOwnedGrafeasNote"]["publicKeys"][0]
    assert key["id"] == key_id
    assert key["pkixPublicKey"]["signatureAlgorithm"] == "ECDSA_P256_SHA256"
    assert got["description"] == "QA sign-off"

    human = ok(cli(server, "attestor", "get", "projects/crud/attestors/qa")).stdout
    assert "note: projects/crud/notes/qa" in human

    # A second attestor on the existing note: the note is reused, not created again.
    prefix2, _ = make_key(tmp_path, "qa2")
    second = ok(
        cli(
            server,
            "attestor",
            "create",
            "crud/qa2",
            "--note",
            "projects/crud/notes/qa",
            "--pkix-key",
            f"{prefix2}.pub",
            "--key-id",
            "//kms/qa2",
        )
    )
    assert "created note" not in second.stdout
    assert "//kms/qa2" in second.stdout

    listed = json.loads(ok(cli(server, "attestor", "list", "--project", "crud", "--json")).stdout)
    assert [a["name"] for a in listed["attestors"]] == [
        "projects/crud/attestors/qa",
        "projects/crud/attestors/qa2",
    ]

    duplicate = cli(
        server,
        "attestor",
        "create",
        "crud/qa",
        "--note",
        "projects/crud/notes/qa",
        "--pkix-key",
        f"{prefix}.pub",
    )
    assert duplicate.exit_code == 2
    assert "already exists" in duplicate.stderr


def test_attestor_create_refuses_bad_input(server: LiveServer, tmp_path: Path) -> None:
    no_keys = cli(server, "attestor", "create", "p/qa", "--note", "projects/p/notes/qa")
    assert no_keys.exit_code == 2
    assert "at least one key" in no_keys.stderr

    bad_name = cli(server, "attestor", "create", "qa", "--note", "projects/p/notes/qa")
    assert bad_name.exit_code == 2
    assert "expected PROJECT/ID" in bad_name.stderr

    bad_note = cli(server, "attestor", "create", "p/qa", "--note", "notes/qa")
    assert bad_note.exit_code == 2
    assert "projects/{project_id}/notes/{note_id}" in bad_note.stderr

    (tmp_path / "junk.pub").write_text("not a key")
    junk = cli(
        server, "attestor", "create", "p/qa", "--note", "projects/p/notes/qa",
        "--pkix-key", str(tmp_path / "junk.pub"),
    )  # fmt: skip
    assert junk.exit_code == 2
    assert "not a PEM public key" in junk.stderr

    prefix, _ = make_key(tmp_path, "k")
    unpaired = cli(
        server, "attestor", "create", "p/qa", "--note", "projects/p/notes/qa",
        "--pkix-key", f"{prefix}.pub", "--key-id", "a", "--key-id", "b",
    )  # fmt: skip
    assert unpaired.exit_code == 2
    assert "--key-id was given 2 times for 1 --pkix-key" in unpaired.stderr


def _create_and_verify(server: LiveServer, tmp_path: Path, project: str, alg: str) -> None:
    prefix = make_attestor(server, tmp_path, project, "qa", alg)
    uploaded = ok(
        cli(
            server,
            "attestation",
            "create",
            "--image",
            IMAGE_A,
            "--key",
            f"{prefix}.key",
            "--algorithm",
            alg,
            "--note",
            f"projects/{project}/notes/qa",
            "--upload",
            "--json",
        )
    )
    occurrence = json.loads(uploaded.stdout)
    assert occurrence["kind"] == "ATTESTATION"
    assert occurrence["name"].startswith(f"projects/{project}/occurrences/")

    verified = ok(
        cli(
            server,
            "attestation",
            "verify",
            "--image",
            IMAGE_A,
            "--attestor",
            f"projects/{project}/attestors/qa",
        )
    )
    assert f"verified  {occurrence['name']}: simple-signing signed by key sha256:" in (
        verified.stdout
    )
    assert "1 of 1 attestation(s) verified" in verified.stdout

    # Nothing vouches for another digest of the same repository.
    other = cli(
        server,
        "attestation",
        "verify",
        "--image",
        IMAGE_B,
        "--attestor",
        f"projects/{project}/attestors/qa",
    )
    assert other.exit_code == 1
    assert f"no attestations of projects/{project}/notes/qa for {IMAGE_B}" in other.stdout


def test_pkix_ecdsa_attestation_round_trip(server: LiveServer, tmp_path: Path) -> None:
    _create_and_verify(server, tmp_path, "ecdsa", "ECDSA_P256_SHA256")


def test_pkix_rsa_attestation_round_trip(server: LiveServer, tmp_path: Path) -> None:
    _create_and_verify(server, tmp_path, "rsa", "RSA_PSS_2048_SHA256")


def test_pkix_ed25519_attestation_round_trip(server: LiveServer, tmp_path: Path) -> None:
    _create_and_verify(server, tmp_path, "ed25519", "ED25519")


def test_in_toto_slsa_provenance_as_dsse(server: LiveServer, tmp_path: Path) -> None:
    prefix = make_attestor(server, tmp_path, "build", "builder", "ECDSA_P256_SHA256")
    predicate = {
        "buildDefinition": {
            "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
            "externalParameters": {"source": "git+https://github.com/acme/app@refs/heads/main"},
        },
        "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"}},
    }
    (tmp_path / "provenance.json").write_text(json.dumps(predicate))
    out = tmp_path / "occurrence.json"
    ok(
        cli(
            server,
            "attestation",
            "create",
            "--image",
            IMAGE_A,
            "--key",
            f"{prefix}.key",
            "--format",
            "in-toto",
            "--predicate-type",
            "SLSA_PROVENANCE",
            "--predicate",
            str(tmp_path / "provenance.json"),
            "--note",
            "projects/build/notes/builder",
            "--output",
            str(out),
        )
    )
    written = json.loads(out.read_text())
    envelope = written["dsseAttestation"]["envelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    import base64

    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [{"name": "gcr.io/acme/app", "digest": {"sha256": "a" * 64}}]

    uploaded = ok(cli(server, "attestation", "upload", str(out), "--json"))
    assert json.loads(uploaded.stdout)["kind"] == "DSSE_ATTESTATION"

    verified = json.loads(
        ok(
            cli(
                server,
                "attestation",
                "verify",
                "--image",
                IMAGE_A,
                "--attestor",
                "projects/build/attestors/builder",
                "--json",
            )
        ).stdout
    )
    assert verified["verified"] is True
    (result,) = verified["attestations"]
    assert result["format"] == "in-toto"
    assert result["keyIds"][0].startswith("sha256:")

    listed = json.loads(
        ok(
            cli(server, "attestation", "list", "--image", IMAGE_A, "--project", "build", "--json")
        ).stdout
    )
    assert [o["kind"] for o in listed["occurrences"]] == ["DSSE_ATTESTATION"]


def test_attestation_for_another_digest_fails_with_the_reason(
    server: LiveServer, tmp_path: Path
) -> None:
    prefix = make_attestor(server, tmp_path, "replay", "qa", "ECDSA_P256_SHA256")
    # A genuine signature over digest B, filed under image A: a replay attempt.
    out = tmp_path / "b.json"
    ok(
        cli(
            server,
            "attestation",
            "create",
            "--image",
            IMAGE_B,
            "--key",
            f"{prefix}.key",
            "--note",
            "projects/replay/notes/qa",
            "-o",
            str(out),
        )
    )
    occurrence = json.loads(out.read_text())
    occurrence["resourceUri"] = f"https://{IMAGE_A}"
    out.write_text(json.dumps(occurrence))
    ok(cli(server, "attestation", "upload", str(out)))

    result = cli(server, "attestation", "verify", "--image", IMAGE_A, "--attestor", "replay/qa")
    assert result.exit_code == 1
    assert f"payload names {DIGEST_B} but the image is {DIGEST_A}" in result.stdout
    assert "0 of 1 attestation(s) verified" in result.stdout


def test_tampered_signature_and_unknown_key_fail(server: LiveServer, tmp_path: Path) -> None:
    prefix = make_attestor(server, tmp_path, "tamper", "qa", "ECDSA_P256_SHA256")
    stranger, stranger_id = make_key(tmp_path, "stranger")

    tampered = tmp_path / "t.json"
    ok(
        cli(
            server, "attestation", "create", "--image", IMAGE_A, "--key", f"{prefix}.key",
            "--note", "projects/tamper/notes/qa", "-o", str(tampered),
        )
    )  # fmt: skip
    occurrence = json.loads(tampered.read_text())
    import base64

    payload = json.loads(base64.b64decode(occurrence["attestation"]["serializedPayload"]))
    payload["critical"]["identity"]["docker-reference"] = "gcr.io/evil/app"
    occurrence["attestation"]["serializedPayload"] = base64.b64encode(
        json.dumps(payload).encode()
    ).decode()
    tampered.write_text(json.dumps(occurrence))
    ok(cli(server, "attestation", "upload", str(tampered)))

    ok(
        cli(
            server, "attestation", "create", "--image", IMAGE_A, "--key", f"{stranger}.key",
            "--note", "projects/tamper/notes/qa", "--upload",
        )
    )  # fmt: skip

    result = cli(
        server,
        "attestation",
        "verify",
        "--image",
        IMAGE_A,
        "--attestor",
        "tamper/qa",
        "--json",
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["verified"] is False
    reasons = [" ".join(a["reasons"]) for a in report["attestations"]]
    assert len(reasons) == 2
    assert any("does not verify" in r for r in reasons), reasons
    assert any(stranger_id in r or "unknown key" in r or "does not verify" in r for r in reasons)


def test_tag_only_image_is_refused_with_how_to_pin_it(tmp_path: Path) -> None:
    prefix, _ = make_key(tmp_path, "k")
    result = runner.invoke(
        app,
        ["attestation", "create", "--image", "gcr.io/acme/app:1.0", "--key", f"{prefix}.key"],
    )
    assert result.exit_code == 2
    assert "has no digest" in result.stderr
    assert "gcr.io/acme/app@sha256:<digest>" in result.stderr
    assert "crane digest gcr.io/acme/app:1.0" in result.stderr


def test_attestation_create_prints_the_occurrence_without_a_server(tmp_path: Path) -> None:
    prefix, key_id = make_key(tmp_path, "k")
    result = ok(
        runner.invoke(
            app,
            ["attestation", "create", "--image", IMAGE_A, "--key", f"{prefix}.key",
             "--format", "image-url"],
        )
    )  # fmt: skip
    occurrence = json.loads(result.stdout)
    assert occurrence["resourceUri"] == f"https://{IMAGE_A}"
    import base64

    assert base64.b64decode(occurrence["attestation"]["serializedPayload"]).decode() == (
        f"{IMAGE_A}\n"
    )
    assert occurrence["attestation"]["signatures"][0]["publicKeyId"] == key_id


def test_attestation_create_usage_errors(tmp_path: Path) -> None:
    prefix, _ = make_key(tmp_path, "k")
    both = runner.invoke(
        app,
        ["attestation", "create", "--image", IMAGE_A, "--key", f"{prefix}.key", "--gpg-key", "x"],
    )
    assert both.exit_code == 2
    assert "exactly one of --key" in both.stderr

    upload = runner.invoke(
        app, ["attestation", "create", "--image", IMAGE_A, "--key", f"{prefix}.key", "--upload"]
    )
    assert upload.exit_code == 2
    assert "--upload needs --note" in upload.stderr

    intoto = runner.invoke(
        app,
        ["attestation", "create", "--image", IMAGE_A, "--key", f"{prefix}.key",
         "--format", "in-toto"],
    )  # fmt: skip
    assert intoto.exit_code == 2
    assert "--predicate-type" in intoto.stderr

    alias = runner.invoke(
        app,
        ["attestation", "create", "--image", IMAGE_A, "--key", f"{prefix}.key",
         "--format", "in-toto", "--predicate-type", "nonsense", "--predicate", f"{prefix}.pub"],
    )  # fmt: skip
    assert alias.exit_code == 2
    assert "is neither a URI nor a known name" in alias.stderr


def test_verify_an_attestor_that_does_not_exist(server: LiveServer) -> None:
    result = cli(server, "attestation", "verify", "--image", IMAGE_A, "--attestor", "nope/qa")
    assert result.exit_code == 2
    assert "attestor projects/nope/attestors/qa does not exist" in result.stderr


def test_attestor_delete(server: LiveServer, tmp_path: Path) -> None:
    prefix, _ = make_key(tmp_path, "gone")
    ok(
        cli(
            server, "attestor", "create", "del/gone", "--note", "projects/del/notes/gone",
            "--pkix-key", f"{prefix}.pub",
        )
    )  # fmt: skip
    deleted = cli(server, "attestor", "delete", "del/gone")
    ok(deleted)
    assert "deleted attestor projects/del/attestors/gone" in deleted.stdout
    missing = cli(server, "attestor", "get", "del/gone")
    assert missing.exit_code == 2
    assert "attestor projects/del/attestors/gone does not exist" in missing.stderr
