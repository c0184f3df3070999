"""An import in batches ends where importing the same records one at a time ends: the same
report counts, stored records, notes and findings — on real OSV records (the Go vulnerability
database Debian ships, the osv-schema examples), on memory, SQLite and PostgreSQL.

Two scanners share one store under different provider projects, so each keeps its own
records, notes and findings about the same images: one imports every batch in one call
(statement batches of 4 records, so a record repeated in one import falls in different
batches), the other record by record. The imports: everything new, with repeats; then newer
copies (some narrowed so that findings close), older copies, unchanged copies and withdrawals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import realdebian
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.services.scribe import scanning
from chainproof.services.scribe.scanning import ImportReport, ScanService
from chainproof.store.port import MetadataStore
from chainproof.vuln.osv import Advisory, parse_document, parse_record
from unit.services.judge_fixtures import System

FIXTURES = Path(__file__).parents[1] / "fixtures" / "osv"
IMAGES = [f"registry.example/app{i}@sha256:{i:064x}" for i in range(3)]
PURL_TYPE = {"Go": "golang", "npm": "npm", "Maven": "maven", "RubyGems": "gem"}


def real_records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in realdebian.go_vulndb_files():
        out += [dict(a.raw) for a in parse_document(path.read_bytes(), source=path.name)]
    for path in sorted(FIXTURES.glob("*.osv.json")):
        out.append(json.loads(path.read_text()))
    return list({r["id"]: r for r in reversed(out)}.values())[::-1]  # the vulndb repeats some


def purls(records: list[dict[str, Any]]) -> list[str]:
    """Packages at the versions the records name, and one below each: many findings."""
    out: set[str] = set()
    for record in records:
        for entry in record.get("affected", []):
            package = entry.get("package") or {}
            kind = PURL_TYPE.get(package.get("ecosystem", ""))
            if kind is None:
                continue
            name = package["name"].replace(":", "/") if kind == "maven" else package["name"]
            versions = [
                e for r in entry.get("ranges", []) for ev in r["events"] for e in ev.values()
            ]
            versions += entry.get("versions", [])
            prefix = "v" if kind == "golang" else ""
            for v in [*versions, "0.0.1"]:
                if v and v != "0":
                    out.add(f"pkg:{kind}/{name}@{prefix}{v.lstrip('v')}")
    return sorted(out)


def later(record: dict[str, Any], day: int, **changes: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(record))
    copy["modified"] = f"2031-01-{day:02d}T00:00:00Z"
    copy.update(changes)
    return copy


def narrowed(record: dict[str, Any], day: int) -> dict[str, Any]:
    copy = later(record, day)
    for entry in copy.get("affected", []):
        entry.pop("versions", None)
        for r in entry.get("ranges", []):
            r["events"] = [{"introduced": "0"}, {"fixed": "0.0.0-1" if r["type"] != "GIT" else "x"}]
    return copy


def imports(records: list[dict[str, Any]]) -> list[list[Advisory]]:
    first = records + records[:3] + [later(records[4], 1)]  # repeats, one newer in the same import
    second: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        if i % 5 == 0:
            second.append(narrowed(record, 2))
        elif i % 5 == 1:
            second.append(later(record, 3, withdrawn="2031-01-03T00:00:00Z"))
        elif i % 5 == 2:
            second.append({**record, "modified": "2000-01-01T00:00:00Z", "affected": []})  # older
        elif i % 5 == 3:
            second.append(record)  # unchanged (or older than the newer copy of import one)
        else:
            second += [later(record, 4, summary="first"), later(record, 5, summary="second")]
    return [[parse_record(r) for r in batch] for batch in (first, second)]


async def state(store: MetadataStore, provider: str) -> dict[str, Any]:
    async with store.session(readonly=True) as s:
        documents = await s.documents.page(provider, scanning.COLLECTION, None, 1_000)
        notes = await s.notes.page(provider, None, None, 1_000)
        findings = await s.occurrences.page("prod", None, None, 10_000)
    return {
        "records": {d.doc_id: (dict(d.data), d.etag) for d in documents},
        "notes": {
            n.note_id: (
                n.kind,
                n.note.short_description,
                n.note.vulnerability.details[0].is_obsolete
                if n.note.vulnerability.details
                else None,
            )
            for n in notes
        },
        "findings": sorted(
            (
                f.resource,
                f.note_id,
                f.occurrence.vulnerability.package_issue[0].affected_package,
                f.occurrence.vulnerability.package_issue[0].affected_version.name,
                f.occurrence.vulnerability.package_issue[0].fixed_version.name,
            )
            for f in findings
            if f.note_project == provider and f.kind == "VULNERABILITY"
        ),
    }


def counts(reports: list[ImportReport]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in reports:
        for k, v in r.as_dict().items():
            if k not in ("imagesRematched", "findingsOpened", "findingsClosed"):
                total[k] = total.get(k, 0) + v
    return total


async def with_images(store: MetadataStore) -> System:
    """The IMAGES, each holding most of the packages the real records name."""
    system = System(store=store)  # type: ignore[arg-type]
    await system.grafeas.create_note(
        "projects/prod", "sbom", note_from_json({"package": {"name": "sbom"}})
    )
    packages = purls(real_records())
    for n, uri in enumerate(IMAGES):
        body = [
            occurrence_from_json(
                {
                    "resourceUri": uri,
                    "noteName": "projects/prod/notes/sbom",
                    "package": {
                        "name": p.split("/")[-1].split("@")[0],
                        "version": {"name": p.rsplit("@", 1)[1], "kind": "NORMAL"},
                        "location": [{"cpeUri": p}],
                    },
                }
            )
            for i, p in enumerate(packages)
            if (i + n) % 3  # images share most packages, not all
        ]
        await system.grafeas.batch_create_occurrences("projects/prod", body)
    return system


async def test_an_import_in_batches_ends_as_one_record_at_a_time(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scanning, "IMPORT_BATCH", 4)
    system = await with_images(store)
    records = real_records()
    assert len(records) >= 15
    batched = ScanService(store, system.grafeas, provider_project="osv-batch", clock=system.clock)
    single = ScanService(store, system.grafeas, provider_project="osv-single", clock=system.clock)
    seen = []
    for batch in imports(records):
        report = await batched.import_advisories(batch)
        one_by_one = [await single.import_advisories([a]) for a in batch]
        assert counts([report]) == counts(one_by_one)
        a, b = await state(store, "osv-batch"), await state(store, "osv-single")
        assert a == b
        seen.append((report, a))
    (first, after_first), (second, after_second) = seen
    assert first.imported + first.withdrawn == len(records)
    assert first.unchanged == 3 and first.replaced == 1
    assert first.findings_opened == len(after_first["findings"]) > 50
    assert second.withdrawn and second.older_ignored and second.unchanged and second.replaced
    assert second.findings_closed > 0 and len(after_second["findings"]) < len(
        after_first["findings"]
    )
    assert batched.index.get(records[1]["id"]) is None  # withdrawn: out of matching
    assert len(batched.index) == len(single.index)


async def findings_written(store: MetadataStore, provider: str) -> dict[tuple[str, ...], Any]:
    """Each stored finding of ``provider`` as its JSON says it, but for what differs between
    two writes of the same finding (name, times, the provider's name)."""
    async with store.session(readonly=True) as s:
        rows = await s.occurrences.page_documents("prod", None, None, 10_000)
    out: dict[tuple[str, ...], Any] = {}
    for r in rows:
        if r.note_project != provider or r.kind != "VULNERABILITY":
            continue
        doc = {k: v for k, v in r.document.items() if k not in ("name", "createTime", "updateTime")}
        issue = doc["vulnerability"]["packageIssue"][0]
        key = (r.resource, r.note_id, issue["affectedPackage"], issue["affectedVersion"]["name"])
        out[key] = json.loads(json.dumps(doc).replace(provider, "PROVIDER"))
    return out


async def test_a_finding_on_images_of_several_rematch_batches_is_made_once(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import's re-match keeps the finding templates it made across its batches: with one
    image per batch, each (advisory, package, CPE) is made once, and every image's stored
    finding says what a re-match of all the images in one batch writes."""
    system = await with_images(store)
    records = [parse_record(r) for r in real_records()]
    made: list[str] = []
    real = scanning.vg.finding_occurrence

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(args[2].id)
        return real(*args, **kwargs)

    monkeypatch.setattr(scanning.vg, "finding_occurrence", counted)
    monkeypatch.setattr(scanning, "REMATCH_BATCH", 1)
    apart = ScanService(store, system.grafeas, provider_project="osv-apart", clock=system.clock)
    report = await apart.import_advisories(records)
    assert report.images_rematched == len(IMAGES)
    written = await findings_written(store, "osv-apart")
    templates = {(k[1], k[2], k[3]) for k in written}
    assert len(written) == report.findings_opened > len(templates) > 20
    assert len(made) == len(templates)  # not one per image

    monkeypatch.setattr(scanning, "REMATCH_BATCH", 200)
    together = ScanService(store, system.grafeas, provider_project="osv-all", clock=system.clock)
    await together.import_advisories(records)
    assert await findings_written(store, "osv-all") == written
