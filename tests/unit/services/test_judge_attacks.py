"""Attacks on what the judge admits and on how long it takes (issue 9), each through the
public seams: the Judge service, the admission service, the Grafeas service.

Every test here was run against the code before its fix and failed there; the item of the
issue each one proves is in its name and docstring.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chainproof.attest.predicates import OPENVEX, VULN_SCAN_COSIGN
from chainproof.config import AdmissionSettings
from chainproof.crypto.keys import PublicKey, SignatureCheck
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.domain.workloads import ContainerImage, Workload
from chainproof.errors import InvalidArgument
from chainproof.policy import AdmissionRequest, Attestor, Outcome
from chainproof.services.judge.admission import AdmissionService
from chainproof.services.judge.evidence import EvidenceGatherer, EvidenceLimits, VerificationCache
from chainproof.store.factory import create_store
from chainproof.store.port import DocumentRecord, OccurrenceRecord
from unit.services.judge_fixtures import NOW, Signer, System

A = "gcr.io/acme/app@sha256:" + "a" * 64
B = "gcr.io/acme/app@sha256:" + "b" * 64
REQUIRE = {
    "evaluationMode": "REQUIRE_ATTESTATION",
    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
}
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "scans"
SLSA_V1 = "https://slsa.dev/provenance/v1"
PKG = [{"affectedCpeUri": "cpe:/o:debian", "affectedPackage": "openssl"}]


def _z(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _provenance(builder: str) -> dict[str, Any]:
    return {
        "buildDefinition": {"buildType": "x", "externalParameters": {}},
        "runDetails": {"builder": {"id": builder}},
    }


def _cosign_scan(result: Any, finished: datetime = NOW - timedelta(hours=1)) -> dict[str, Any]:
    return {
        "invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy@v0.49.0",
            "version": "0.49.0",
            "db": {"uri": "", "version": ""},
            "result": result,
        },
        "metadata": {
            "scanStartedOn": _z(finished - timedelta(minutes=1)),
            "scanFinishedOn": _z(finished),
        },
    }


async def _two_rules(system: System) -> tuple[Signer, Signer]:
    """prod (the default rule) trusts `release`; the dev namespace trusts `dev`."""
    release = await system.attestor("sec", "release")
    dev = await system.attestor("sec", "dev")
    return release, dev


async def _critical_finding(system: System, image: str = A, cve: str = "CVE-2026-1") -> None:
    await system.grafeas.create_note(
        "projects/prod", cve, note_from_json({"vulnerability": {"severity": "CRITICAL"}})
    )
    await system.grafeas.create_occurrence(
        "projects/prod",
        occurrence_from_json(
            {
                "resourceUri": image,
                "noteName": f"projects/prod/notes/{cve}",
                "vulnerability": {
                    "effectiveSeverity": "CRITICAL",
                    "fixAvailable": True,
                    "packageIssue": PKG,
                },
            }
        ),
    )


async def _discovery(
    system: System, status: str | None, *, kind: str = "VULNERABILITY", note: str = "scanner"
) -> None:
    async with system.store.session(readonly=True) as s:
        existing = await s.notes.get("prod", note)
    if existing is None:
        await system.grafeas.create_note(
            "projects/prod", note, note_from_json({"discovery": {"analysisKind": kind}})
        )
    body: dict[str, Any] = {"lastScanTime": _z(NOW - timedelta(hours=1))}
    if status is not None:
        body["analysisStatus"] = status
    await system.grafeas.create_occurrence(
        "projects/prod",
        occurrence_from_json(
            {"resourceUri": A, "noteName": f"projects/prod/notes/{note}", "discovery": body}
        ),
    )


@pytest.fixture
def system() -> System:
    return System()


# ----------------------------------------------------------------- item 1: evidence scoping


async def test_item1_another_rules_attestor_cannot_vouch_for_the_builder(system: System) -> None:
    """A dev-namespace attestor's provenance must not satisfy prod's trustedBuilders."""
    release, dev = await _two_rules(system)
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [release.attestor],
            "chainproofChecks": {"trustedBuilders": ["https://builder.acme.example/prod"]},
        },
        kubernetesNamespaceAdmissionRules={
            "dev": {**REQUIRE, "requireAttestationsBy": [dev.attestor]}
        },
    )
    await system.sign(release, A)
    await system.attest(dev, A, SLSA_V1, _provenance("https://builder.acme.example/prod"))
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,), namespace="prod"))
    assert decision.outcome is Outcome.DENIED, decision.explain()
    assert "no verified SLSA provenance" in " ".join(decision.denial_reasons())
    # The decision says whose evidence the rule's checks accepted.
    assert decision.images[0].rule.evidence_from == (release.attestor,)
    assert f"evidence counted from: {release.attestor}" in decision.explain()

    # The same provenance signed by the rule's own attestor counts.
    await system.attest(release, A, SLSA_V1, _provenance("https://builder.acme.example/prod"))
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,), namespace="prod"))
    assert decision.outcome is Outcome.ALLOWED, decision.explain()


async def test_item1_cel_sees_only_the_rules_attestors(system: System) -> None:
    release, dev = await _two_rules(system)
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [release.attestor],
            "chainproofChecks": {
                "cel": 'attestations.exists(a, a.predicateType == "https://slsa.dev/provenance/v1")'
            },
        },
        kubernetesNamespaceAdmissionRules={
            "dev": {**REQUIRE, "requireAttestationsBy": [dev.attestor]}
        },
    )
    await system.sign(release, A)
    await system.attest(dev, A, SLSA_V1, _provenance("https://builder.acme.example/dev"))
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,), namespace="prod"))
    assert decision.outcome is Outcome.DENIED, decision.explain()


async def test_item1_another_rules_vex_cannot_resolve_a_finding(system: System) -> None:
    release, dev = await _two_rules(system)
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [release.attestor],
            "chainproofChecks": {
                "vulnerabilities": {"maximumFixableSeverity": "HIGH", "requireScan": False}
            },
        },
        kubernetesNamespaceAdmissionRules={
            "dev": {**REQUIRE, "requireAttestationsBy": [dev.attestor]}
        },
    )
    await system.sign(release, A)
    await _critical_finding(system)
    vex = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "statements": [
            {
                "vulnerability": {"name": "CVE-2026-1"},
                "status": "not_affected",
                "justification": "component_not_present",
            }
        ],
    }
    await system.attest(dev, A, OPENVEX, vex)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED, decision.explain()
    assert "CVE-2026-1" in " ".join(decision.denial_reasons())


async def test_item1_another_rules_scan_does_not_count(system: System) -> None:
    release, dev = await _two_rules(system)
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [release.attestor],
            "chainproofChecks": {
                "freshness": {"maximumScanAgeHours": 24},
                "vulnerabilities": {"maximumFixableSeverity": "HIGH"},
            },
        },
        kubernetesNamespaceAdmissionRules={
            "dev": {**REQUIRE, "requireAttestationsBy": [dev.attestor]}
        },
    )
    await system.sign(release, A)
    report = {"SchemaVersion": 2, "ArtifactName": A, "Results": []}
    await system.attest(dev, A, VULN_SCAN_COSIGN, _cosign_scan(report))
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED, decision.explain()
    reasons = " ".join(decision.denial_reasons())
    assert "no vulnerability scan is recorded" in reasons


# ----------------------------------------------------------------- item 3: finished scans


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("PENDING", "VULNERABILITY"),
        ("SCANNING", "VULNERABILITY"),
        (None, "VULNERABILITY"),
        ("FINISHED_SUCCESS", "SECRET"),
        ("FINISHED_SUCCESS", "SBOM_REFERENCE"),
    ],
)
async def test_item3_only_a_finished_vulnerability_scan_counts(
    system: System, status: str | None, kind: str
) -> None:
    release = await system.attestor("sec", "release")
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [release.attestor],
            "chainproofChecks": {
                "vulnerabilities": {"maximumFixableSeverity": "HIGH"},
                "freshness": {"maximumScanAgeHours": 24},
            },
        },
    )
    await system.sign(release, A)
    await _discovery(system, status, kind=kind)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED, decision.explain()
    assert "no vulnerability scan is recorded" in " ".join(decision.denial_reasons())


async def test_item3_a_finished_vulnerability_scan_still_counts(system: System) -> None:
    release = await system.attestor("sec", "release")
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [release.attestor],
            "chainproofChecks": {
                "vulnerabilities": {"maximumFixableSeverity": "HIGH"},
                "freshness": {"maximumScanAgeHours": 24},
            },
        },
    )
    await system.sign(release, A)
    await _discovery(system, "FINISHED_SUCCESS")
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.ALLOWED, decision.explain()


# ----------------------------------------------------------------- item 4: no silent prefix


async def _lows(system: System, count: int) -> None:
    await system.grafeas.create_note(
        "projects/prod", "CVE-LOW", note_from_json({"vulnerability": {"severity": "LOW"}})
    )
    for start in range(0, count, 1000):
        await system.grafeas.batch_create_occurrences(
            "projects/prod",
            [
                occurrence_from_json(
                    {
                        "resourceUri": A,
                        "noteName": "projects/prod/notes/CVE-LOW",
                        "vulnerability": {"effectiveSeverity": "LOW", "packageIssue": PKG},
                    }
                )
                for _ in range(min(1000, count - start))
            ],
        )


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
async def test_item4_a_critical_finding_after_2000_low_ones_is_seen(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Paged reads on every store: the finding after the old window is seen."""
    if backend == "memory":
        url = "memory://"
    elif backend == "sqlite":
        url = f"sqlite:///{tmp_path}/chainproof.db"
    else:
        url = request.getfixturevalue("fresh_pg_url")
    store = create_store(url)
    await store.open()
    try:
        await _critical_after_lows(System(store=store))  # type: ignore[arg-type]
    finally:
        await store.close()


async def _critical_after_lows(system: System) -> None:
    release = await system.attestor("sec", "release")
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [release.attestor],
            "chainproofChecks": {
                "vulnerabilities": {"maximumFixableSeverity": "HIGH", "requireScan": False}
            },
        },
    )
    await system.sign(release, A)
    await _lows(system, 2000)
    await _critical_finding(system)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED, decision.explain()
    assert "CVE-2026-1" in " ".join(decision.denial_reasons())


async def test_item4_junk_on_the_attestors_note_does_not_hide_the_attestation(
    system: System,
) -> None:
    release = await system.attestor("sec", "release")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [release.attestor]})
    junk = {
        "resourceUri": A,
        "noteName": release.note,
        "attestation": {
            "serializedPayload": base64.b64encode(b"junk").decode(),
            "signatures": [{"signature": base64.b64encode(b"x").decode(), "publicKeyId": "junk"}],
        },
    }
    await system.grafeas.batch_create_occurrences(
        "projects/app", [occurrence_from_json(junk) for _ in range(600)]
    )
    await system.sign(release, A)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.ALLOWED, decision.explain()


async def test_item4_a_bound_that_is_hit_fails_closed_with_a_message() -> None:
    system = System()
    system.judge.gatherer = EvidenceGatherer(
        system.store, limits=EvidenceLimits(max_occurrences=100)
    )
    release = await system.attestor("sec", "release")
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [release.attestor],
            "chainproofChecks": {
                "vulnerabilities": {"maximumFixableSeverity": "HIGH", "requireScan": False}
            },
        },
    )
    await system.sign(release, A)
    await _lows(system, 150)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED, decision.explain()
    reasons = " ".join(decision.denial_reasons())
    assert "more than 100" in reasons and "vulnerability" in reasons


async def _sbom_references(system: System, count: int) -> None:
    await system.grafeas.create_note(
        "projects/prod",
        "sbom-spdx",
        note_from_json({"sbomReference": {"format": "SPDX", "version": "2.3"}}),
    )
    ref = {"payloadType": "application/vnd.in-toto+json", "payload": {"predicate": {}}}
    await system.grafeas.batch_create_occurrences(
        "projects/prod",
        [
            occurrence_from_json(
                {
                    "resourceUri": A,
                    "noteName": "projects/prod/notes/sbom-spdx",
                    "sbomReference": ref,
                }
            )
            for _ in range(count)
        ],
    )


@pytest.mark.parametrize(("count", "complete"), [(100, True), (101, False)])
async def test_item4_sbom_references_past_their_bound_fail_closed(
    system: System, count: int, complete: bool
) -> None:
    """The judge reads at most 100 SBOM references per source; past that it must say so
    and deny, not decide the SBOM check on the first hundred."""
    release = await system.attestor("sec", "release")
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [release.attestor],
            "chainproofChecks": {"sbom": {"formats": ["SPDX"]}},
        },
    )
    await system.sign(release, A)
    await _sbom_references(system, count)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    if complete:
        assert decision.outcome is Outcome.ALLOWED, decision.explain()
    else:
        assert decision.outcome is Outcome.DENIED, decision.explain()
        assert "more than 100 SBOM references" in " ".join(decision.denial_reasons())


# ----------------------------------------------------------------- item 5: signed findings


async def test_item5_findings_inside_a_signed_trivy_scan_count(system: System) -> None:
    scanner = await system.attestor("sec", "scanner")
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [scanner.attestor],
            "chainproofChecks": {"vulnerabilities": {"maximumFixableSeverity": "LOW"}},
        },
    )
    report = json.loads((FIXTURES / "trivy-alpine-310.json").read_text())
    await system.attest(scanner, A, VULN_SCAN_COSIGN, _cosign_scan(report))
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED, decision.explain()
    reasons = " ".join(decision.denial_reasons())
    assert "CVE-2019-1549" in reasons and "libcrypto1.1" in reasons


async def test_item5_findings_inside_a_signed_grype_scan_count(system: System) -> None:
    scanner = await system.attestor("sec", "scanner")
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [scanner.attestor],
            "chainproofChecks": {"vulnerabilities": {"maximumUnfixableSeverity": "HIGH"}},
        },
    )
    report = json.loads((FIXTURES / "grype-imgs-presenter.json").read_text())
    await system.attest(scanner, A, VULN_SCAN_COSIGN, _cosign_scan(report))
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED, decision.explain()
    assert "CVE-1999-0002" in " ".join(decision.denial_reasons())


async def test_item5_an_unreadable_signed_scan_is_not_a_clean_scan(system: System) -> None:
    scanner = await system.attestor("sec", "scanner")
    await system.policy(
        "prod",
        {
            **REQUIRE,
            "requireAttestationsBy": [scanner.attestor],
            "chainproofChecks": {"vulnerabilities": {"maximumFixableSeverity": "LOW"}},
        },
    )
    await system.attest(scanner, A, VULN_SCAN_COSIGN, _cosign_scan({"whatever": [1, 2]}))
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED, decision.explain()
    assert "findings cannot be read" in " ".join(decision.denial_reasons())


# ----------------------------------------------------------------- item 10: floods


def _flood_body(signer: Signer, image: str, count: int) -> dict[str, Any]:
    """An attestation carrying ``count`` well-formed signatures that all claim the trusted
    key, none of which verifies (each signs other bytes)."""
    payload = b'{"critical": {}}'
    sigs = [
        {
            "signature": base64.b64encode(signer.signer.sign(b"other %d" % i)).decode(),
            "publicKeyId": signer.signer.key_id,
        }
        for i in range(count)
    ]
    return {
        "resourceUri": image,
        "noteName": signer.note,
        "attestation": {
            "serializedPayload": base64.b64encode(payload).decode(),
            "signatures": sigs,
        },
    }


async def test_item10_signatures_per_attestation_are_bounded_on_write(system: System) -> None:
    release = await system.attestor("sec", "release")
    with pytest.raises(InvalidArgument, match="at most 32 signatures"):
        await system.grafeas.create_occurrence(
            "projects/app", occurrence_from_json(_flood_body(release, A, 1000))
        )
    dsse = {
        "resourceUri": A,
        "noteName": release.note,
        "dsseAttestation": {
            "envelope": {
                "payload": base64.b64encode(b"{}").decode(),
                "payloadType": "application/vnd.in-toto+json",
                "signatures": [{"sig": base64.b64encode(b"s").decode(), "keyid": "k"}] * 33,
            }
        },
    }
    with pytest.raises(InvalidArgument, match="at most 32 signatures"):
        await system.grafeas.create_occurrence("projects/app", occurrence_from_json(dsse))
    # Nor can an update grow an attestation past the bound.
    stored = await system.sign(release, A)
    with pytest.raises(InvalidArgument, match="at most 32 signatures"):
        await system.grafeas.update_occurrence(
            stored.name, occurrence_from_json(_flood_body(release, A, 33)), ["attestation"]
        )


async def _stored_flood(system: System, signer: Signer, occurrences: int, each: int) -> None:
    """A flood written straight to the store (as if from before the write limit existed)."""
    rows = []
    for i in range(occurrences):
        occ = occurrence_from_json(_flood_body(signer, A, each))
        occ.name = f"projects/app/occurrences/flood-{i:04d}"
        occ.kind = 8  # ATTESTATION
        rows.append(
            OccurrenceRecord(
                "app", f"flood-{i:04d}", "ATTESTATION", "sec", signer.note.rsplit("/", 1)[1], A, occ
            )
        )
    async with system.store.session() as s:
        await s.occurrences.insert(rows)


class _CountingCache(VerificationCache):
    """Hands out the attestor's real keys wrapped so that every check is counted."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def keys_for(self, attestor: Attestor, fingerprint: str) -> list[PublicKey]:
        return [_Counted(k, self) for k in super().keys_for(attestor, fingerprint)]


class _Counted(PublicKey):
    def __init__(self, inner: PublicKey, cache: _CountingCache) -> None:
        self._inner, self._cache = inner, cache
        self.key_type = inner.key_type

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    def matches_hint(self, hint: str) -> bool:
        return self._inner.matches_hint(hint)

    def _verify(self, signature: bytes, data: bytes | None, now: datetime) -> SignatureCheck:
        self._cache.checks += 1
        return self._inner.verify(signature, data, now=now)


async def test_item10_a_stored_flood_spends_a_bounded_budget_and_fails_closed() -> None:
    system = System()
    cache = _CountingCache()
    system.judge.gatherer = EvidenceGatherer(
        system.store, cache, limits=EvidenceLimits(max_signature_checks=500)
    )
    release = await system.attestor("sec", "release")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [release.attestor]})
    await _stored_flood(system, release, occurrences=20, each=100)
    await system.sign(release, A)
    decision = await system.judge.evaluate("prod", AdmissionRequest(images=(A,)))
    assert decision.outcome is Outcome.DENIED, decision.explain()
    assert "verification budget of 500 signature checks" in " ".join(decision.denial_reasons())
    assert cache.checks <= 500


class _GatedCache(VerificationCache):
    """Keys whose every verification waits for the test to open a gate (in whatever thread
    verification runs), to observe what the event loop does meanwhile."""

    def __init__(self, gate: threading.Event, events: list[str]) -> None:
        super().__init__()
        self.gate, self.events = gate, events
        self.started = threading.Event()

    def keys_for(self, attestor: Attestor, fingerprint: str) -> list[PublicKey]:
        return [_Gated(k, self) for k in super().keys_for(attestor, fingerprint)]


class _Gated(_Counted):
    def __init__(self, inner: PublicKey, cache: _GatedCache) -> None:
        self._inner, self._gated = inner, cache
        self.key_type = inner.key_type

    def _verify(self, signature: bytes, data: bytes | None, now: datetime) -> SignatureCheck:
        self._gated.started.set()
        if not self._gated.gate.wait(timeout=5):
            self._gated.events.append("verification gave up waiting")
        return self._inner.verify(signature, data, now=now)


@pytest.mark.parametrize("failure_mode", ["closed", "open"])
async def test_item10_verification_runs_off_the_loop_and_the_deadline_wins(
    failure_mode: str,
) -> None:
    """While a signature is verified the loop keeps running, and the deadline denies — even
    with failure mode open, since a flood can make any review slow on purpose."""
    system = System()
    gate, events = threading.Event(), []
    cache = _GatedCache(gate, events)
    system.judge.gatherer = EvidenceGatherer(system.store, cache)
    release = await system.attestor("sec", "release")
    await system.policy("default", {**REQUIRE, "requireAttestationsBy": [release.attestor]})
    await system.sign(release, A)
    admission = AdmissionService(
        system.judge,
        system.decisions,
        system.grafeas,
        AdmissionSettings(
            project="default",
            deadline_seconds=0.3,
            failure_mode=failure_mode,  # type: ignore[arg-type]
        ),
        system.clock,
    )
    workload = Workload("Pod", "web", "prod", "default", (ContainerImage("containers[0]", A),))
    review = asyncio.get_running_loop().create_task(admission.review(workload))
    assert await asyncio.to_thread(cache.started.wait, 5)
    # The loop runs while a signature is being verified: /healthz and other reviews go on.
    events.append("event loop ran during verification")
    result = await review  # the gate is still closed: only the deadline can end the review
    gate.set()
    assert events[0] == "event loop ran during verification", events
    assert not result.allowed and result.outcome == "error"
    assert "deadline" in result.message


# ----------------------------------------------------------------- item 11: corrupt attestor


async def test_item11_a_corrupted_attestor_fails_only_the_reviews_that_need_it(
    system: System,
) -> None:
    release, dev = await _two_rules(system)
    await system.policy(
        "prod",
        {**REQUIRE, "requireAttestationsBy": [release.attestor]},
        kubernetesNamespaceAdmissionRules={
            "dev": {**REQUIRE, "requireAttestationsBy": [dev.attestor]}
        },
    )
    await system.sign(release, A)
    await system.sign(dev, A)
    async with system.store.session() as s:
        stored = await s.documents.get("sec", "attestors", "dev")
        assert stored is not None
        await s.documents.put(
            DocumentRecord(
                "sec",
                "attestors",
                "dev",
                {"userOwnedGrafeasNote": 7},
                "x",
                stored.create_time,
                stored.update_time,
            )
        )
    system.changes.configuration_changed()
    prod = await system.judge.evaluate("prod", AdmissionRequest(images=(A,), namespace="prod"))
    assert prod.outcome is Outcome.ALLOWED, prod.explain()
    dev_decision = await system.judge.evaluate(
        "prod", AdmissionRequest(images=(A,), namespace="dev")
    )
    assert dev_decision.outcome is Outcome.DENIED
    assert "projects/sec/attestors/dev is unusable" in " ".join(dev_decision.denial_reasons())


async def test_item10_a_floods_spent_budget_is_not_remembered_for_another_image() -> None:
    """A flood on one image of a pod spends the shared budget; the other image, reviewed on
    its own later, is judged afresh rather than from a cached partial read."""
    system = System(cache_ttl=timedelta(minutes=5))
    system.judge.gatherer = EvidenceGatherer(
        system.store, limits=EvidenceLimits(max_signature_checks=300)
    )
    release = await system.attestor("sec", "release")
    await system.policy("prod", {**REQUIRE, "requireAttestationsBy": [release.attestor]})
    await _stored_flood(system, release, occurrences=10, each=100)
    await system.sign(release, B)
    both = await system.judge.evaluate("prod", AdmissionRequest(images=(A, B)))
    assert both.outcome is Outcome.DENIED
    alone = await system.judge.evaluate("prod", AdmissionRequest(images=(B,)))
    assert alone.outcome is Outcome.ALLOWED, alone.explain()
