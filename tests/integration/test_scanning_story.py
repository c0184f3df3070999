"""The scanner's story end to end, on memory, SQLite and PostgreSQL, on real Debian data.

An image's SBOM is syft's of a real Debian root file system, with one source package's
binaries set back to the upload before a CVE fix named in Debian's own changelog. Importing
an advisory built from that changelog fact makes findings appear, the judge deny and the
vouching attestor refuse; ingesting the real (fixed) SBOM closes the findings, the attestor
signs and the judge admits.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import realdebian
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.errors import FailedPrecondition
from chainproof.policy import AdmissionRequest, Outcome
from chainproof.services.judge.vouching import (
    AutoVoucher,
    ConfiguredVoucher,
    Vouching,
    read_vouch_policy,
)
from chainproof.services.scribe.scanning import ScanService
from chainproof.store.factory import create_store
from chainproof.store.port import MetadataStore
from chainproof.store.sql import SqlStore
from chainproof.store.summaries import SummaryQuery
from chainproof.vuln.osv import parse_record
from unit.services.judge_fixtures import System

IMAGE = "registry.example/acme/base@sha256:" + "b" * 64
FIXTURES = Path(__file__).parents[1] / "fixtures" / "osv"


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MetadataStore]:
    if request.param == "memory":
        s: MetadataStore = create_store("memory://")
    elif request.param == "sqlite":
        s = create_store(f"sqlite:///{tmp_path}/c.db")
    else:
        s = create_store(request.getfixturevalue("pg_database_url"))
    await s.open()
    if isinstance(s, SqlStore) and request.param == "postgres":
        async with s.engine.begin() as c:
            await c.execute(
                sa.text(
                    "TRUNCATE projects, notes, occurrences, meta, documents, decisions, "
                    "decision_images, image_facts, impact_terms, image_summaries, "
                    "image_attestations, image_decisions"
                )
            )
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(scope="module")
def debian() -> tuple[list[dict[str, str]], realdebian.CveFix, list[dict[str, str]]]:
    """(real SBOM packages, a changelog CVE fix, the SBOM with that source one upload back)."""
    root = realdebian.debian_rootfs()
    packages = realdebian.sbom_packages(realdebian.syft_sbom(root))
    sources = {}
    for p in packages:
        upstream = (
            p["purl"].split("upstream=", 1)[1].split("%40")[0]
            if "upstream=" in p["purl"]
            else p["name"]
        )
        sources.setdefault(upstream.split("&")[0], []).append(p)
    fixes = [f for f in realdebian.changelog_cve_fixes(root) if f.previous and f.source in sources]
    verdicts = realdebian.dpkg_compare_many([(f.previous or "", f.fixed) for f in fixes])
    fix = next(f for f, v in zip(fixes, verdicts, strict=True) if v == -1)
    older = []
    for p in packages:
        if p in sources[fix.source]:
            base = p["purl"].split("@", 1)[0]
            older.append(
                {
                    "name": p["name"],
                    "version": fix.previous or "",
                    "purl": f"{base}@{fix.previous}?arch=amd64&distro=debian-12&upstream={fix.source}",
                }
            )
        else:
            older.append(p)
    return packages, fix, older


async def _ingest(system: System, packages: list[dict[str, str]]) -> None:
    """Stand-in for SBOM ingestion: the image's PACKAGE occurrences, replaced whole."""
    page = await system.grafeas.list_occurrences("projects/prod", 'kind="PACKAGE"', 1000, "")
    for occ in page.items:
        await system.grafeas.delete_occurrence(occ.name)
    body = [
        occurrence_from_json(
            {
                "resourceUri": IMAGE,
                "noteName": "projects/prod/notes/sbom-packages",
                "package": {
                    "name": p["name"],
                    "version": {"name": p["version"], "kind": "NORMAL", "fullName": p["version"]},
                    "location": [{"cpeUri": p["purl"]}],
                },
            }
        )
        for p in packages
    ]
    await system.grafeas.batch_create_occurrences("projects/prod", body)


def _advisory(fix: realdebian.CveFix) -> dict[str, Any]:
    return {
        "schema_version": "1.6.0",
        "id": f"DEBIAN-{fix.cve}",
        "aliases": [fix.cve],
        "modified": "2026-01-01T00:00:00Z",
        "summary": f"{fix.cve} in {fix.source}",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": fix.source},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fix.fixed}]}
                ],
            }
        ],
    }


async def test_import_deny_refuse_then_fixed_sbom_sign_admit(
    store: MetadataStore,
    debian: tuple[list[dict[str, str]], realdebian.CveFix, list[dict[str, str]]],
) -> None:
    fixed_sbom, fix, vulnerable_sbom = debian
    # The judge's cache on (5 min): every change below must reach it anyway.
    system = System(store=store, cache_ttl=timedelta(minutes=5))  # type: ignore[arg-type]
    scanner = ScanService(store, system.grafeas, provider_project="osv", clock=system.clock)
    vouching = Vouching(system.grafeas, system.gatherer, clock=system.clock)
    attestor = await system.attestor("sec", "not-vulnerable")
    await system.policy(
        "prod",
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [attestor.attestor],
            "chainproofChecks": {
                "vulnerabilities": {"maximumFixableSeverity": "LOW"},
                "freshness": {"maximumScanAgeHours": 24},
            },
        },
    )
    vouch_policy = read_vouch_policy(
        {
            "vulnerabilities": {"maximumFixableSeverity": "LOW"},
            "freshness": {"maximumScanAgeHours": 24},
        }
    )
    await system.grafeas.create_note(
        "projects/prod", "sbom-packages", note_from_json({"package": {"name": "debian"}})
    )
    await _ingest(system, vulnerable_sbom)
    with pytest.raises(FailedPrecondition, match="no OSV advisories have been imported"):
        await scanner.scan_image("prod", IMAGE)  # an empty database proves nothing
    await scanner.import_advisories(
        [parse_record(json.loads((FIXTURES / "npm_greater_than.osv.json").read_text()))]
    )
    first = await scanner.scan_image("prod", IMAGE)
    assert first.packages == len(vulnerable_sbom) and first.findings == [] and first.unknown == []

    report = await scanner.import_advisories([parse_record(_advisory(fix))])
    assert (report.imported, report.images_rematched) == (1, 1)
    assert report.findings_opened >= 1
    again = await scanner.import_advisories([parse_record(_advisory(fix))])
    assert (again.unchanged, again.images_rematched, again.findings_opened) == (1, 0, 0)
    findings = await scanner.affected_images(f"DEBIAN-{fix.cve}")
    assert findings and all(f.resource == IMAGE for f in findings)
    issue = findings[0].occurrence.vulnerability.package_issue[0]
    assert issue.fixed_version.name == fix.fixed

    denied = await system.judge.evaluate("prod", AdmissionRequest(images=(IMAGE,)))
    assert denied.outcome is Outcome.DENIED
    refused = await vouching.vouch("prod", IMAGE, vouch_policy, attestor.note, attestor.signer)
    assert not refused.signed
    assert any(f"DEBIAN-{fix.cve}" in r for r in refused.reasons), refused.reasons

    await _ingest(system, fixed_sbom)
    rescan = await scanner.scan_image("prod", IMAGE)
    assert rescan.findings == [] and rescan.closed == report.findings_opened
    assert await scanner.affected_images(f"DEBIAN-{fix.cve}") == []
    signed = await vouching.vouch("prod", IMAGE, vouch_policy, attestor.note, attestor.signer)
    assert signed.signed and signed.occurrence, signed.reasons
    admitted = await system.judge.evaluate("prod", AdmissionRequest(images=(IMAGE,)))
    assert admitted.outcome is Outcome.ALLOWED, admitted.explain()

    # The old SBOM comes back: the findings reopen and the cached admission dies with them.
    await _ingest(system, vulnerable_sbom)
    assert (await scanner.scan_image("prod", IMAGE)).opened >= 1
    again = await system.judge.evaluate("prod", AdmissionRequest(images=(IMAGE,)))
    assert again.outcome is Outcome.DENIED, again.explain()
    await _ingest(system, fixed_sbom)
    await scanner.scan_image("prod", IMAGE)

    # A day later the scan is stale: the attestor refuses to vouch again until re-scanned.
    system.clock.now += timedelta(hours=25)
    stale = await vouching.vouch("prod", IMAGE, vouch_policy, attestor.note, attestor.signer)
    assert not stale.signed and any("old" in r for r in stale.reasons)


async def test_modified_record_replaces_and_withdrawn_record_retracts(
    store: MetadataStore,
    debian: tuple[list[dict[str, str]], realdebian.CveFix, list[dict[str, str]]],
) -> None:
    _, fix, vulnerable_sbom = debian
    system = System(store=store)  # type: ignore[arg-type]
    scanner = ScanService(store, system.grafeas, clock=system.clock)
    await system.grafeas.create_note(
        "projects/prod", "sbom-packages", note_from_json({"package": {"name": "debian"}})
    )
    await _ingest(system, vulnerable_sbom)
    record = _advisory(fix)
    await scanner.import_advisories([parse_record(record)])
    assert await scanner.affected_images(record["id"])
    older = {**record, "modified": "2025-01-01T00:00:00Z", "affected": []}
    assert (await scanner.import_advisories([parse_record(older)])).older_ignored == 1
    # A newer copy that no longer covers the installed version closes the finding.
    narrowed = json.loads(json.dumps(record))
    narrowed["modified"] = "2026-02-01T00:00:00Z"
    narrowed["affected"][0]["ranges"][0]["events"] = [{"introduced": "0"}, {"fixed": "0.0.1"}]
    replaced = await scanner.import_advisories([parse_record(narrowed)])
    assert replaced.replaced == 1 and replaced.findings_closed >= 1
    assert await scanner.affected_images(record["id"]) == []
    # Withdrawn: matching forgets it, and the note says it is obsolete.
    back = {**record, "modified": "2026-03-01T00:00:00Z"}
    assert (await scanner.import_advisories([parse_record(back)])).findings_opened >= 1
    withdrawn = {**back, "modified": "2026-04-01T00:00:00Z", "withdrawn": "2026-04-01T00:00:00Z"}
    gone = await scanner.import_advisories([parse_record(withdrawn)])
    assert gone.withdrawn == 1 and gone.findings_closed >= 1
    assert await scanner.affected_images(record["id"]) == []
    note = await system.grafeas.get_note(f"projects/osv/notes/{record['id']}")
    assert all(d.is_obsolete for d in note.vulnerability.details)
    # A fresh service over the same store (another replica, a restart) sees the same state.
    other = ScanService(store, system.grafeas, clock=system.clock)
    with pytest.raises(FailedPrecondition):  # its only advisory is withdrawn: nothing to match
        await other.scan_image("prod", IMAGE)
    assert record["id"] not in other.index and len(other.index) == 0


async def _scanned_on_write(
    store: MetadataStore, fix: realdebian.CveFix, sbom: list[dict[str, str]]
) -> tuple[System, ScanService]:
    """The scanner listening to the Grafeas service, the fix's advisory imported, then the
    SBOM written (and so scanned on write)."""
    system = System(store=store)  # type: ignore[arg-type]
    scanner = ScanService(store, system.grafeas, clock=system.clock)
    system.grafeas.add_listener(scanner.on_occurrences)
    await scanner.import_advisories([parse_record(_advisory(fix))])
    await system.grafeas.create_note(
        "projects/prod", "sbom-packages", note_from_json({"package": {"name": "debian"}})
    )
    await _ingest(system, sbom)
    await scanner.drain()
    return system, scanner


async def test_a_new_sbom_is_matched_at_once(
    store: MetadataStore,
    debian: tuple[list[dict[str, str]], realdebian.CveFix, list[dict[str, str]]],
) -> None:
    """With the scanner listening to the Grafeas service, writing PACKAGE occurrences is
    enough: no explicit scan call, the findings and the DISCOVERY appear."""
    _, fix, vulnerable_sbom = debian
    system, scanner = await _scanned_on_write(store, fix, vulnerable_sbom)
    assert await scanner.affected_images(f"DEBIAN-{fix.cve}")
    page = await system.grafeas.list_occurrences("projects/prod", 'kind="DISCOVERY"', 10, "")
    assert len(page.items) == 1
    assert page.items[0].note_name == "projects/osv/notes/chainproof-scanner"


async def test_an_images_discovery_keeps_its_name_as_scans_date_it_again(
    store: MetadataStore,
    debian: tuple[list[dict[str, str]], realdebian.CveFix, list[dict[str, str]]],
) -> None:
    """The first scan creates the image's DISCOVERY; a re-match after an import and an
    explicit scan write over it (same name and create time, the new scan's time), as
    continuous analysis updates one occurrence rather than leaving a trail."""
    _, fix, vulnerable_sbom = debian
    system, scanner = await _scanned_on_write(store, fix, vulnerable_sbom)

    async def discovery() -> Any:
        page = await system.grafeas.list_occurrences("projects/prod", 'kind="DISCOVERY"', 10, "")
        assert len(page.items) == 1
        return page.items[0]

    first = await discovery()
    t0 = system.clock.now
    system.clock.now = t0 + timedelta(hours=1)
    second = _advisory(fix) | {"id": f"DEBIAN-{fix.cve}-AGAIN"}
    report = await scanner.import_advisories([parse_record(second)])
    assert report.images_rematched == 1 and report.findings_opened >= 1
    rematched = await discovery()
    system.clock.now = t0 + timedelta(hours=2)
    await scanner.scan_image("prod", IMAGE)
    rescanned = await discovery()
    for occ, at in ((first, t0), (rematched, t0 + timedelta(hours=1))):
        assert occ.discovery.last_scan_time.ToDatetime(UTC) == at
    assert rescanned.discovery.last_scan_time.ToDatetime(UTC) == t0 + timedelta(hours=2)
    for occ in (rematched, rescanned):
        assert occ.name == first.name
        assert occ.create_time == first.create_time
        assert occ.resource_uri == first.resource_uri
        assert occ.update_time == occ.discovery.last_scan_time
    # The image's summary dates its newest scan by the DISCOVERY written over.
    async with store.session(readonly=True) as s:
        rows = await s.image_summaries.page(
            SummaryQuery(projects=("prod",), decision_project="prod"), None, 10
        )
    assert [r.summary.last_scan for r in rows] == [t0 + timedelta(hours=2)]


@pytest.mark.parametrize("forms", [("simple-signing",), ("simple-signing", "in-toto-vulns")])
async def test_configured_attestor_signs_and_withdraws_as_evidence_changes(
    store: MetadataStore,
    debian: tuple[list[dict[str, str]], realdebian.CveFix, list[dict[str, str]]],
    forms: tuple[str, ...],
) -> None:
    """Inside the server: after every scan the configured attestor signs an image that passes
    and withdraws its signature from one that no longer does; its in-toto vulns statement is
    signed again at every passing scan (it dates the scan), never left twice."""
    fixed_sbom, fix, vulnerable_sbom = debian
    system = System(store=store)  # type: ignore[arg-type]
    scanner = ScanService(store, system.grafeas, clock=system.clock)
    vouching = Vouching(system.grafeas, system.gatherer, clock=system.clock)
    attestor = await system.attestor("sec", "not-vulnerable")
    auto = AutoVoucher(
        vouching,
        system.grafeas,
        [
            ConfiguredVoucher(
                attestor.note,
                read_vouch_policy({"vulnerabilities": {"maximumFixableSeverity": "LOW"}}),
                attestor.signer,
                forms,
            )
        ],
    )
    scanner.add_after_scan(auto.image_changed)
    await system.policy(
        "prod",
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [attestor.attestor],
        },
    )
    await system.grafeas.create_note(
        "projects/prod", "sbom-packages", note_from_json({"package": {"name": "debian"}})
    )

    async def attestations(kind: str = "ATTESTATION") -> list[str]:
        page = await system.grafeas.list_occurrences("projects/prod", f'kind="{kind}"', 10, "")
        return [str(o.name) for o in page.items]

    vulns = "in-toto-vulns" in forms
    await scanner.import_advisories([parse_record(_advisory(fix))])
    await _ingest(system, vulnerable_sbom)
    await scanner.scan_image("prod", IMAGE)
    assert await attestations() == [] and await attestations("DSSE_ATTESTATION") == []
    await _ingest(system, fixed_sbom)
    await scanner.scan_image("prod", IMAGE)
    assert len(await attestations()) == 1
    first = await attestations("DSSE_ATTESTATION")
    assert len(first) == (1 if vulns else 0)
    admitted = await system.judge.evaluate("prod", AdmissionRequest(images=(IMAGE,)))
    assert admitted.outcome is Outcome.ALLOWED, admitted.explain()
    system.clock.now += timedelta(minutes=5)
    await scanner.scan_image("prod", IMAGE)
    assert len(await attestations()) == 1  # still passing: not signed twice
    again = await attestations("DSSE_ATTESTATION")
    assert len(again) == len(first) and (not vulns or again != first)  # the statement renewed
    await _ingest(system, vulnerable_sbom)
    await scanner.scan_image("prod", IMAGE)
    assert await attestations() == [] and await attestations("DSSE_ATTESTATION") == []
    denied = await system.judge.evaluate("prod", AdmissionRequest(images=(IMAGE,)))
    assert denied.outcome is Outcome.DENIED


async def test_vex_in_cve_terms_applies_to_a_finding_filed_under_its_osv_id(
    store: MetadataStore,
    debian: tuple[list[dict[str, str]], realdebian.CveFix, list[dict[str, str]]],
) -> None:
    _, fix, vulnerable_sbom = debian
    system = System(store=store)  # type: ignore[arg-type]
    scanner = ScanService(store, system.grafeas, clock=system.clock)
    vouching = Vouching(system.grafeas, system.gatherer, clock=system.clock)
    policy = read_vouch_policy({"vulnerabilities": {"maximumFixableSeverity": "LOW"}})
    await system.grafeas.create_note(
        "projects/prod", "sbom-packages", note_from_json({"package": {"name": "debian"}})
    )
    await _ingest(system, vulnerable_sbom)
    await scanner.import_advisories([parse_record(_advisory(fix))])
    assert not (await vouching.check("prod", IMAGE, policy)).passed
    # The vendor says, in CVE terms (as OpenVEX/CSAF ingestion records it): not affected.
    await system.grafeas.create_note(
        "projects/prod", fix.cve, note_from_json({"vulnerability": {"severity": "CRITICAL"}})
    )
    await system.grafeas.create_occurrence(
        "projects/prod",
        occurrence_from_json(
            {
                "resourceUri": IMAGE,
                "noteName": f"projects/prod/notes/{fix.cve}",
                "vulnerability": {
                    "packageIssue": [
                        {"affectedCpeUri": "cpe:/o:debian", "affectedPackage": fix.source}
                    ],
                    "vexAssessment": {"state": "NOT_AFFECTED", "vulnerabilityId": fix.cve},
                },
            }
        ),
    )
    passed = await vouching.check("prod", IMAGE, policy)
    assert passed.passed, passed.reasons
    assert "resolved by VEX" in passed.results[0].reason


async def test_the_collector_waits_for_each_bounded_step_and_runs_between_them(
    store: MetadataStore,
    debian: tuple[list[dict[str, str]], realdebian.CveFix, list[dict[str, str]]],
) -> None:
    """Storing an import's records and each re-match batch run with the cyclic collector
    paused (a full gen-2 walk of a large heap took a fifth of a full match); it runs again
    between them and after, and an explicit scan pauses it only for its own match."""
    _, fix, vulnerable_sbom = debian
    _, scanner = await _scanned_on_write(store, fix, vulnerable_sbom)
    seen: list[tuple[str, bool]] = []
    stored, batch = ScanService._store_records, ScanService._rematch_batch

    async def store_spy(self: ScanService, *args: Any) -> Any:
        seen.append(("store", gc.isenabled()))
        return await stored(self, *args)

    async def batch_spy(self: ScanService, *args: Any) -> Any:
        seen.append(("batch", gc.isenabled()))
        return await batch(self, *args)

    async def after_scan(project: str, resource: str) -> None:
        seen.append(("hook", gc.isenabled()))

    scanner.add_after_scan(after_scan)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ScanService, "_store_records", store_spy)
        patch.setattr(ScanService, "_rematch_batch", batch_spy)
        newer = {**_advisory(fix), "modified": "2026-02-01T00:00:00Z", "summary": "again"}
        report = await scanner.import_advisories([parse_record(newer)])
        assert report.replaced == 1 and report.images_rematched == 1
        assert gc.isenabled()
        await scanner.scan_image("prod", IMAGE)
    assert seen == [("store", False), ("batch", False), ("hook", False), ("hook", False)]
    assert gc.isenabled()
