"""The CLI's policy and decisions commands: offline validation and evaluation, and a live
server for set/get, evaluation and the decision log."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from chainproof.cli.main import _register_groups, app
from live import LiveServer, live_server

FIXTURES = Path(__file__).parents[1] / "fixtures" / "k8s"
SEED_IMAGE = (
    "gcr.io/hightowerlabs/payment@sha256:"
    "aba48d60ba4410ec921f9d2e8169236c57660d121f9430dc9758d754eec8f887"
)
IMAGE = f"gcr.io/acme/app@sha256:{'c' * 64}"

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


def policy_doc(*attestors: str, mode: str = "REQUIRE_ATTESTATION") -> dict[str, Any]:
    rule: dict[str, Any] = {
        "evaluationMode": mode,
        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
    }
    if attestors:
        rule["requireAttestationsBy"] = list(attestors)
    return {
        "admissionWhitelistPatterns": [{"namePattern": "docker.io/library/busybox"}],
        "defaultAdmissionRule": rule,
        "kubernetesNamespaceAdmissionRules": {
            "sandbox": {
                "evaluationMode": "ALWAYS_ALLOW",
                "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            }
        },
    }


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ----------------------------------------------------------------------------- validate


def test_validate_good_policy_yaml_and_json(tmp_path: Path) -> None:
    good = write_yaml(tmp_path / "policy.yaml", policy_doc("projects/p/attestors/qa"))
    result = ok(runner.invoke(app, ["policy", "validate", str(good)]))
    assert "OK" in result.stdout
    assert "REQUIRE_ATTESTATION" in result.stdout

    as_json = tmp_path / "policy.json"
    as_json.write_text(json.dumps(policy_doc("projects/p/attestors/qa")))
    report = json.loads(
        ok(runner.invoke(app, ["policy", "validate", str(as_json), "--json"])).stdout
    )
    assert report["valid"] is True


def test_validate_bad_policy_lists_every_problem_with_its_path(tmp_path: Path) -> None:
    doc = policy_doc("projects/p/attestors/qa")
    doc["defaultAdmissionRule"]["evaluationMode"] = "REQUIRE"
    doc["clusterAdmissionRules"] = {
        "prod": {
            "evaluationMode": "ALWAYS_ALLOW",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        }
    }
    doc["requireAttestationBy"] = []  # a typo must not silently weaken a policy
    bad = write_yaml(tmp_path / "bad.yaml", doc)

    result = runner.invoke(app, ["policy", "validate", str(bad)])
    assert result.exit_code == 2
    assert "invalid policy:" in result.stderr
    assert "defaultAdmissionRule.evaluationMode: 'REQUIRE' is not one of" in result.stderr
    # Rich markup must not swallow the bracketed path.
    assert "clusterAdmissionRules[prod]" in result.stderr
    assert "requireAttestationBy" in result.stderr

    report = json.loads(runner.invoke(app, ["policy", "validate", str(bad), "--json"]).stdout)
    assert report["valid"] is False
    assert len(report["problems"]) >= 3
    assert any(p.startswith("clusterAdmissionRules[prod]") for p in report["problems"])


def test_validate_syntax_errors_and_missing_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("defaultAdmissionRule:\n  evaluationMode: [ALWAYS_ALLOW\n")
    result = runner.invoke(app, ["policy", "validate", str(broken)])
    assert result.exit_code == 2
    assert "is not valid YAML at line" in result.stderr

    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"defaultAdmissionRule": ')
    result = runner.invoke(app, ["policy", "validate", str(bad_json)])
    assert result.exit_code == 2
    assert "is not valid JSON" in result.stderr

    missing = runner.invoke(app, ["policy", "validate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr


KRITIS = """\
apiVersion: kritis.grafeas.io/v1beta1
kind: ImageSecurityPolicy
metadata: {name: isp, namespace: prod}
spec:
  packageVulnerabilityRequirements:
    maximumSeverity: MEDIUM
---
apiVersion: kritis.grafeas.io/v1beta1
kind: GenericAttestationPolicy
metadata: {name: gap, namespace: prod}
spec:
  attestationAuthorityNames: [qa-authority]
"""


def test_validate_kritis_resources(tmp_path: Path) -> None:
    good = tmp_path / "kritis.yaml"
    good.write_text(KRITIS)
    result = ok(runner.invoke(app, ["policy", "validate", str(good)]))
    assert "1 GenericAttestationPolicy, 1 ImageSecurityPolicy" in result.stdout

    bad = tmp_path / "kritis-bad.yaml"
    bad.write_text(
        KRITIS.replace("MEDIUM", "SCARY").replace("qa-authority]", "qa-authority]\n  bogus: 1")
    )
    result = runner.invoke(app, ["policy", "validate", str(bad)])
    assert result.exit_code == 2
    assert "[0].spec.packageVulnerabilityRequirements.maximumSeverity" in result.stderr
    assert "[1].spec" in result.stderr


# ----------------------------------------------------------------------------- server


def _attestor(server: LiveServer, tmp_path: Path, project: str) -> Path:
    ok(runner.invoke(app, ["keys", "generate", "--out", str(tmp_path / "qa")]))
    ok(
        cli(
            server, "attestor", "create", f"{project}/qa", "--note",
            f"projects/{project}/notes/qa", "--pkix-key", str(tmp_path / "qa.pub"),
        )
    )  # fmt: skip
    return tmp_path / "qa.key"


def test_policy_set_get_and_evaluate_denied_then_allowed(
    server: LiveServer, tmp_path: Path
) -> None:
    key = _attestor(server, tmp_path, "judged")
    policy = write_yaml(tmp_path / "policy.yaml", policy_doc("projects/judged/attestors/qa"))
    stored = ok(cli(server, "policy", "set", str(policy), "--project", "judged"))
    assert "stored projects/judged/policy" in stored.stdout

    got = yaml.safe_load(ok(cli(server, "policy", "get", "--project", "judged")).stdout)
    assert got["defaultAdmissionRule"]["requireAttestationsBy"] == ["projects/judged/attestors/qa"]
    assert json.loads(ok(cli(server, "policy", "get", "-p", "judged", "--json")).stdout)["etag"]

    denied = cli(server, "policy", "evaluate", "--image", IMAGE, "--project", "judged")
    assert denied.exit_code == 1, denied.output
    assert denied.stdout.startswith("DENIED")
    assert "no attestation by projects/judged/attestors/qa" in denied.stdout

    # The namespace rule allows anything; the allowlist admits busybox.
    sandbox = ok(
        cli(server, "policy", "evaluate", "-i", IMAGE, "-p", "judged", "--namespace", "sandbox")
    )
    assert sandbox.stdout.startswith("ALLOWED")
    ok(cli(server, "policy", "evaluate", "-i", "busybox:1.36", "-p", "judged"))

    ok(
        cli(
            server, "attestation", "create", "--image", IMAGE, "--key", str(key),
            "--note", "projects/judged/notes/qa", "--upload",
        )
    )  # fmt: skip
    allowed = ok(cli(server, "policy", "evaluate", "--image", IMAGE, "--project", "judged"))
    assert allowed.stdout.startswith("ALLOWED")
    assert "[ok  ] attestation by projects/judged/attestors/qa" in allowed.stdout

    decision = json.loads(
        ok(cli(server, "policy", "evaluate", "-i", IMAGE, "-p", "judged", "--json")).stdout
    )
    assert decision["outcome"] == "allowed"
    assert decision["images"][0]["reference"] == IMAGE

    # Two images, one of them unattested: the workload is denied.
    other = f"gcr.io/acme/other@sha256:{'d' * 64}"
    both = cli(server, "policy", "evaluate", "-i", IMAGE, "-i", other, "-p", "judged")
    assert both.exit_code == 1
    assert f"- {other}: denied" in both.stdout


def test_policy_set_refuses_bad_files_before_calling_the_server(
    server: LiveServer, tmp_path: Path
) -> None:
    bad = write_yaml(tmp_path / "bad.yaml", {"defaultAdmissionRule": {"evaluationMode": "NO"}})
    result = cli(server, "policy", "set", str(bad), "--project", "x")
    assert result.exit_code == 2
    assert "defaultAdmissionRule.evaluationMode" in result.stderr

    unknown = write_yaml(tmp_path / "p.yaml", policy_doc("projects/x/attestors/missing"))
    result = cli(server, "policy", "set", str(unknown), "--project", "x")
    assert result.exit_code == 2
    assert "projects/x/attestors/missing" in result.stderr

    kritis = tmp_path / "kritis.yaml"
    kritis.write_text(KRITIS.split("---")[0])
    result = cli(server, "policy", "set", str(kritis), "--project", "x")
    assert result.exit_code == 2
    assert "Kritis" in result.stderr

    none = cli(server, "policy", "get", "--project", "nopolicy")
    assert none.exit_code == 2
    assert "has no policy yet" in none.stderr


def test_evaluate_needs_a_project_or_a_policy_file() -> None:
    result = runner.invoke(app, ["policy", "evaluate", "--image", IMAGE])
    assert result.exit_code == 2
    assert "--project is required" in result.stderr
    stray = runner.invoke(
        app, ["policy", "evaluate", "--image", IMAGE, "-p", "x", "--occurrences", "o.json"]
    )
    assert stray.exit_code == 2
    assert "add --policy FILE" in stray.stderr


# ----------------------------------------------------------------------------- offline


def _offline_evidence(server: LiveServer, tmp_path: Path, project: str) -> tuple[Path, Path]:
    """An attestor file and a ListOccurrences dump fetched from a real server."""
    key = _attestor(server, tmp_path, project)
    ok(
        cli(
            server, "attestation", "create", "--image", IMAGE, "--key", str(key),
            "--note", f"projects/{project}/notes/qa", "--upload",
        )
    )  # fmt: skip
    attestor = json.loads(ok(cli(server, "attestor", "get", f"{project}/qa", "--json")).stdout)
    attestor_file = tmp_path / "attestor.json"
    attestor_file.write_text(json.dumps(attestor))
    dump = httpx.get(f"{server.base_url}/v1/projects/{project}/occurrences").json()
    note = httpx.get(f"{server.base_url}/v1/projects/{project}/notes/qa").json()
    occurrences_file = tmp_path / "occurrences.json"
    occurrences_file.write_text(json.dumps({"notes": [note], **dump}))
    return attestor_file, occurrences_file


def test_offline_evaluation_with_a_binary_authorization_policy(
    server: LiveServer, tmp_path: Path
) -> None:
    attestor_file, occurrences_file = _offline_evidence(server, tmp_path, "offline")
    policy = write_yaml(tmp_path / "policy.yaml", policy_doc("projects/offline/attestors/qa"))
    base = ["policy", "evaluate", "--policy", str(policy), "--attestor", str(attestor_file)]

    allowed = ok(runner.invoke(app, [*base, "--occurrences", str(occurrences_file), "-i", IMAGE]))
    assert allowed.stdout.startswith("ALLOWED")

    other = f"gcr.io/acme/app@sha256:{'e' * 64}"
    denied = runner.invoke(app, [*base, "--occurrences", str(occurrences_file), "-i", other])
    assert denied.exit_code == 1
    assert "no attestation by projects/offline/attestors/qa" in denied.stdout

    # A bare list of occurrences, without the note: a placeholder note is made for it.
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(json.loads(occurrences_file.read_text())["occurrences"]))
    ok(runner.invoke(app, [*base, "--occurrences", str(bare), "-i", IMAGE]))

    # Without the evidence the same image is denied; the JSON carries the explanation too.
    no_evidence = runner.invoke(app, [*base, "-i", IMAGE, "--json"])
    assert no_evidence.exit_code == 1
    decision = json.loads(no_evidence.stdout)
    assert decision["outcome"] == "denied"
    assert decision["explanation"].startswith("DENIED")


def test_offline_evaluation_with_kritis_resources(server: LiveServer, tmp_path: Path) -> None:
    attestor_file, occurrences_file = _offline_evidence(server, tmp_path, "kritis")
    attestor = json.loads(attestor_file.read_text())
    owned = attestor["userOwnedGrafeasNote"]
    authority = {
        "apiVersion": "kritis.grafeas.io/v1beta1",
        "kind": "AttestationAuthority",
        "metadata": {"name": "qa-authority", "namespace": "prod"},
        "spec": {
            "noteReference": f"v1beta1/{owned['noteReference']}",
            "publicKeys": [
                {
                    "keyType": "PKIX",
                    "keyId": owned["publicKeys"][0]["id"],
                    "pkixPublicKey": owned["publicKeys"][0]["pkixPublicKey"],
                }
            ],
        },
    }
    kritis = tmp_path / "kritis.yaml"
    kritis.write_text(KRITIS + "---\n" + yaml.safe_dump(authority))
    base = ["policy", "evaluate", "--policy", str(kritis), "--occurrences", str(occurrences_file)]

    allowed = ok(runner.invoke(app, [*base, "-i", IMAGE, "--namespace", "prod"]))
    assert allowed.stdout.startswith("ALLOWED")
    other = f"gcr.io/acme/app@sha256:{'f' * 64}"
    denied = runner.invoke(app, [*base, "-i", other, "--namespace", "prod"])
    assert denied.exit_code == 1
    assert "GenericAttestationPolicy" in denied.stdout


def test_offline_evaluation_reports_bad_evidence_files(tmp_path: Path) -> None:
    policy = write_yaml(tmp_path / "policy.yaml", policy_doc(mode="ALWAYS_ALLOW"))
    junk = tmp_path / "junk.json"
    junk.write_text(json.dumps([{"hello": "world"}]))
    result = runner.invoke(
        app,
        ["policy", "evaluate", "--policy", str(policy), "--occurrences", str(junk), "-i", IMAGE],
    )
    assert result.exit_code == 2
    assert "[0] is neither an occurrence" in result.stderr

    allowed = ok(runner.invoke(app, ["policy", "evaluate", "--policy", str(policy), "-i", IMAGE]))
    assert allowed.stdout.startswith("ALLOWED")


# ----------------------------------------------------------------------------- decisions


def _admission_review(namespace: str) -> dict[str, Any]:
    pod = json.loads((FIXTURES / "pod.json").read_text())
    pod["metadata"]["namespace"] = namespace
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "kubernetes-admin"},
            "object": pod,
            "dryRun": False,
        },
    }


def test_decisions_list_shows_what_the_webhook_decided(server: LiveServer, tmp_path: Path) -> None:
    # The webhook judges with the "default" project's policy: unattested, so denied, recorded.
    _attestor(server, tmp_path, "default")
    policy = write_yaml(tmp_path / "policy.yaml", policy_doc("projects/default/attestors/qa"))
    ok(cli(server, "policy", "set", str(policy), "--project", "default"))
    answer = httpx.post(
        f"{server.base_url}/webhook/admission?timeout=10s", json=_admission_review("payments")
    ).json()
    assert answer["response"]["allowed"] is False

    decisions: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not decisions and time.monotonic() < deadline:  # the log is written in the background
        listed = ok(cli(server, "decisions", "list", "--project", "default", "--json"))
        decisions = json.loads(listed.stdout)["decisions"]
        time.sleep(0.05)
    assert decisions, "the decision was never recorded"
    assert decisions[0]["outcome"] == "denied"
    assert decisions[0]["namespace"] == "payments"
    assert SEED_IMAGE in decisions[0]["images"]

    filtered = ok(
        cli(
            server, "decisions", "list", "-p", "default", "--image", SEED_IMAGE,
            "--namespace", "payments", "--outcome", "denied", "--since", "1h", "--json",
        )
    )  # fmt: skip
    assert len(json.loads(filtered.stdout)["decisions"]) == 1
    none = ok(cli(server, "decisions", "list", "-p", "default", "--outcome", "allowed", "--json"))
    assert json.loads(none.stdout)["decisions"] == []

    table = ok(cli(server, "decisions", "list", "-p", "default"))
    assert "denied" in table.stdout
    assert "payments" in table.stdout

    empty = ok(cli(server, "decisions", "list", "-p", "quiet"))
    assert "no decisions recorded in projects/quiet" in empty.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outcome", "maybe"], "--outcome 'maybe' is not one of allowed, denied"),
        (["--since", "yesterday"], "--since 'yesterday' is not a time"),
        (["--since", "1h", "--until", "2h"], "is after --until"),
        (["--image", "Not An Image"], "image reference"),
        (["--limit", "0"], "Invalid value for '--limit'"),
    ],
)
def test_decisions_list_refuses_bad_filters(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["decisions", "list", "-p", "default", *args])
    assert result.exit_code == 2
    assert message in result.stderr
