"""uow.image_summaries on memory, SQLite and PostgreSQL: after any sequence of writes the
summaries kept on write equal a fold of the stored occurrences recomputed from scratch
(ADR 0122), and the pages' queries (filters, sorts, keyset pages, counts, totals, reverse
impact) answer the same on every adapter."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainproof.domain.image_summary import (
    CLOSED_VEX,
    SCAN_KINDS,
    SEVERITIES,
    finding,
    occurrence_time,
    package,
)
from chainproof.domain.messages import OccurrencePB
from chainproof.store.port import MetadataStore, OccurrenceRecord
from chainproof.store.summaries import ImpactRow, SummaryQuery, SummaryRow

from .store_samples import decision_record

T = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
_run = itertools.count()


@dataclass(frozen=True)
class Spec:
    """One occurrence to write, in a small world where collisions are likely."""

    kind: str  # ATTESTATION, VULNERABILITY, PACKAGE, DISCOVERY, BUILD
    resource: int  # which of three images ("" for 3: no resource)
    note: int
    severity: str
    vex: str  # "", NOT_AFFECTED, FIXED, AFFECTED, UNDER_INVESTIGATION
    hour: int


def _occurrence(project: str, oid: str, spec: Spec, run: str) -> OccurrenceRecord:
    resource = "" if spec.resource == 3 else f"registry.example/{run}/app{spec.resource}@sha256:aa"
    occ: Any = OccurrencePB()
    occ.name = f"projects/{project}/occurrences/{oid}"
    occ.resource_uri = f"https://{resource}" if resource else ""
    note_project, note_id = "sec", f"n{spec.note}"
    if spec.kind == "VULNERABILITY":
        note_project, note_id = "scans", f"CVE-2024-000{spec.note}"
        occ.vulnerability.severity = SEVERITIES.index(spec.severity)
        issue = occ.vulnerability.package_issue.add()
        issue.affected_package = f"pkg:npm/lib{spec.note}"
        if spec.vex:
            occ.vulnerability.vex_assessment.state = {
                "AFFECTED": 1, "NOT_AFFECTED": 2, "FIXED": 3, "UNDER_INVESTIGATION": 4,
            }[spec.vex]  # fmt: skip
    elif spec.kind == "PACKAGE":
        note_project, note_id = "scans", f"pkg{spec.note}"
        occ.package.name = f"lib{spec.note}"
        occ.package.cpe_uri = f"pkg:npm/lib{spec.note}@1.{spec.note}"
    elif spec.kind == "DISCOVERY":
        occ.discovery.analysis_status = 4
    elif spec.kind == "BUILD":
        occ.build.provenance.builder_version = "b"
    else:
        occ.attestation.serialized_payload = b"{}"
    occ.note_name = f"projects/{note_project}/notes/{note_id}"
    stamp = T + timedelta(hours=spec.hour)
    occ.create_time.FromDatetime(stamp)
    if spec.hour % 2:
        occ.update_time.FromDatetime(stamp + timedelta(minutes=30))
    return OccurrenceRecord(project, oid, spec.kind, note_project, note_id, resource, occ)


_spec = st.builds(
    Spec,
    kind=st.sampled_from(("ATTESTATION", "VULNERABILITY", "PACKAGE", "DISCOVERY", "BUILD")),
    resource=st.integers(0, 3),
    note=st.integers(0, 2),
    severity=st.sampled_from(SEVERITIES),
    vex=st.sampled_from(("", "NOT_AFFECTED", "FIXED", "AFFECTED", "UNDER_INVESTIGATION")),
    hour=st.integers(0, 5),
)
#: (operation, project 0/1, specs, which existing occurrences, rolled back?)
_op = st.tuples(
    st.sampled_from(
        ("insert", "replace", "update_many", "delete", "delete_many", "decide", "churn")
    ),
    st.integers(0, 1),
    st.lists(_spec, min_size=1, max_size=4),
    st.lists(st.integers(0, 30), min_size=1, max_size=3),
    st.booleans(),
)


def oracle(records: list[OccurrenceRecord]) -> dict[str, tuple[Any, ...]]:
    """The summaries, folded from the stored occurrences the way the dashboard did before
    summaries were kept (one pass over every occurrence)."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if not r.resource:
            continue
        s = out.setdefault(r.resource, {"n": 0, "notes": set(), "open": Counter(), "scan": None})
        s["n"] += 1
        if r.kind == "ATTESTATION":
            s["notes"].add(f"projects/{r.note_project}/notes/{r.note_id}")
        if r.kind == "VULNERABILITY":
            f = finding(r.occurrence, r.note_id)
            if f.vex_state not in CLOSED_VEX:
                s["open"][f.severity] += 1
        if r.kind in SCAN_KINDS:
            t = occurrence_time(r.occurrence)
            if t is not None and (s["scan"] is None or t > s["scan"]):
                s["scan"] = t
    return {
        k: (v["n"], tuple(sorted(v["notes"])), tuple(v["open"][x] for x in SEVERITIES), v["scan"])
        for k, v in out.items()
    }


def kept(rows: list[SummaryRow]) -> dict[str, tuple[Any, ...]]:
    return {
        r.summary.resource: (
            r.summary.occurrences,
            r.summary.attestation_notes,
            r.summary.open_counts,
            r.summary.last_scan,
        )
        for r in rows
    }


def impact_oracle(records: list[OccurrenceRecord], needle: str) -> list[ImpactRow]:
    """Every match, each at the least term that matched it, by (term, image, kind, detail)."""
    n = needle.lower()
    found: dict[tuple[str, str, str], str] = {}

    def add(row: tuple[str, str, str], term: str) -> None:
        found[row] = min(found.get(row, term), term)

    for r in records:
        if not r.resource:
            continue
        if r.kind == "VULNERABILITY":
            f = finding(r.occurrence, r.note_id)
            if n.startswith("cve-"):
                if r.note_id.lower() == n:
                    add((r.resource, r.kind, f.text), n)
            else:
                for p in f.packages:
                    if p.lower().startswith(n):
                        add((r.resource, r.kind, f.text), p.lower())
        elif r.kind == "PACKAGE" and not n.startswith("cve-"):
            pk = package(r.occurrence, r.note_id)
            if pk.name.lower() == n:
                add((r.resource, r.kind, pk.text), n)
            if n.startswith("pkg:") and pk.purl.lower().startswith(n):
                add((r.resource, r.kind, pk.text), pk.purl.lower())
    return [ImpactRow(*row) for _, *row in sorted((t, *row) for row, t in found.items())]


async def _stored(store: MetadataStore, projects: list[str]) -> list[OccurrenceRecord]:
    out: list[OccurrenceRecord] = []
    async with store.session(readonly=True) as s:
        for p in projects:
            out += await s.occurrences.page(p, None, None, 1000)
    return out


class _Rollback(Exception):
    pass


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(_op, min_size=1, max_size=8))
async def test_summaries_equal_a_fold_from_scratch_after_any_writes(
    store: MetadataStore, ops: list[tuple[str, int, list[Spec], list[int], bool]]
) -> None:
    run = f"run{next(_run)}"
    projects = [f"{run}-a", f"{run}-b"]
    made = itertools.count()
    ids: list[tuple[str, str]] = []
    decided: dict[str, str] = {}
    #: What each stored occurrence was written from (updated only once its unit commits).
    spec_of: dict[tuple[str, str], Spec] = {}
    for op, which, specs, picks, rolled_back in ops:
        project = projects[which]
        pending: dict[tuple[str, str], Spec] = {}
        try:
            async with store.session() as s:
                mine = [i for p, i in ids if p == project]
                if op == "insert":
                    records = [_occurrence(project, f"o{next(made)}", sp, run) for sp in specs]
                    await s.occurrences.insert(records)
                    new = [(project, r.occurrence_id) for r in records]
                    pending = dict(zip(new, specs, strict=True))
                elif op == "replace" and mine:
                    # An update: new VEX state, severity, or even another resource.
                    oid = mine[picks[0] % len(mine)]
                    await s.occurrences.replace(_occurrence(project, oid, specs[0], run))
                    pending[(project, oid)] = specs[0]
                    new = []
                elif op == "update_many" and mine:
                    # Rewritten in place: every other record keeps the stored kind, note and
                    # resource and changes severity, VEX and time; the rest say what they
                    # like, and are skipped unless that happens to be the stored identity.
                    chosen = list(dict.fromkeys(mine[k % len(mine)] for k in picks))
                    batch = []
                    for n, oid in enumerate(chosen):
                        sp = specs[n % len(specs)]
                        was = spec_of[(project, oid)]
                        if n % 2 == 0:
                            sp = replace(was, severity=sp.severity, vex=sp.vex, hour=sp.hour)
                        batch.append(_occurrence(project, oid, sp, run))
                        if (sp.kind, sp.resource, sp.note) == (was.kind, was.resource, was.note):
                            pending[(project, oid)] = sp
                    written = await s.occurrences.update_many(batch)
                    assert written == [oid for oid in chosen if (project, oid) in pending]
                    new = []
                elif op == "delete" and mine:
                    oid = mine[picks[0] % len(mine)]
                    assert await s.occurrences.delete(project, oid)
                    new = [(project, oid)]
                elif op == "delete_many" and mine:
                    chosen = [mine[k % len(mine)] for k in picks]
                    await s.occurrences.delete_many(project, chosen)
                    new = [(project, oid) for oid in chosen]
                elif op == "churn":
                    # Several writes in one unit of work, with a read between them: the
                    # summaries are brought up to date mid-transaction, then changed again,
                    # and a row written earlier in the unit is replaced and deleted.
                    records = [_occurrence(project, f"o{next(made)}", sp, run) for sp in specs]
                    await s.occurrences.insert(records)
                    pending = {
                        (project, r.occurrence_id): sp for r, sp in zip(records, specs, strict=True)
                    }
                    await s.image_summaries.page(
                        SummaryQuery(projects=None, decision_project=projects[0]), None, 10
                    )
                    pool = mine + [r.occurrence_id for r in records]
                    target = pool[picks[0] % len(pool)]
                    await s.occurrences.replace(_occurrence(project, target, specs[-1], run))
                    pending[(project, target)] = specs[-1]
                    victim = pool[picks[-1] % len(pool)]
                    assert await s.occurrences.delete(project, victim)
                    new = [(project, r.occurrence_id) for r in records if r.occurrence_id != victim]
                    gone = (project, victim)
                elif op == "decide":
                    image = f"registry.example/{run}/app{specs[0].resource}@sha256:aa"
                    did = f"{run}-d{next(made):04d}"
                    outcome = ("allowed", "denied")[picks[0] % 2]
                    await s.decisions.insert(
                        [decision_record(projects[0], did, outcome=outcome, images=(image,))]
                    )
                    new = []
                else:
                    continue
                if rolled_back:
                    raise _Rollback
        except _Rollback:
            continue
        spec_of.update(pending)
        if op == "insert":
            ids += new
        elif op == "churn":
            ids = [k for k in ids if k != gone] + new
        elif op in ("delete", "delete_many"):
            ids = [k for k in ids if k not in set(new)]
        elif op == "decide":
            decided[image] = outcome

    stored = await _stored(store, projects)
    async with store.session(readonly=True) as s:
        for scope in (None, (projects[0],), (projects[1],), tuple(projects)):
            records = [r for r in stored if scope is None or r.project in scope]
            q = SummaryQuery(projects=scope, decision_project=projects[0], image=f"/{run}/")
            rows = await s.image_summaries.page(q, None, 100)
            assert kept(rows) == oracle(records), scope
            assert await s.image_summaries.count(q) == len(oracle(records))
            for row in rows:
                assert row.last_outcome == decided.get(row.summary.resource, "")
            if scope is not None:
                totals = await s.image_summaries.totals(scope)
                expected = oracle(records)
                assert totals.images == len(expected)
                assert totals.open_counts == tuple(
                    sum(v[2][i] for v in expected.values()) for i in range(len(SEVERITIES))
                )
                for needle in ("CVE-2024-0001", "pkg:npm/lib1", "lib2", "pkg:npm/"):
                    got = await s.image_summaries.impact(needle, scope, 100)
                    assert got == impact_oracle(records, needle), needle
                    # A bound smaller than the matches: the first rows of the same order,
                    # read in index-ordered chunks of that size and merged.
                    for limit in (1, 2, 3):
                        got = await s.image_summaries.impact(needle, scope, limit)
                        assert got == impact_oracle(records, needle)[:limit], (needle, limit)


async def test_a_removed_fact_that_held_a_note_or_the_newest_scan_is_read_again(
    store: MetadataStore,
) -> None:
    """The cases a delta alone cannot decide (ADR 0205): the attestation note and the newest
    scan of a removed occurrence stay while another occurrence of the scope carries them."""
    run = f"held{next(_run)}"
    a, b = f"{run}-a", f"{run}-b"
    note = "projects/sec/notes/n0"

    def spec(kind: str, hour: int) -> Spec:
        return Spec(kind, 0, 0, "HIGH", "", hour)

    async def summary(scope: tuple[str, ...] | None) -> tuple[Any, ...]:
        async with store.session(readonly=True) as s:
            rows = await s.image_summaries.page(
                SummaryQuery(projects=scope, decision_project=a, image=f"/{run}/"), None, 10
            )
        assert len(rows) <= 1
        return kept(rows).popitem()[1] if rows else ()

    async with store.session() as s:
        await s.occurrences.insert(
            [
                _occurrence(a, "att1", spec("ATTESTATION", 0), run),
                _occurrence(a, "att2", spec("ATTESTATION", 0), run),
                _occurrence(b, "att3", spec("ATTESTATION", 0), run),
                _occurrence(a, "scan-old", spec("DISCOVERY", 2), run),  # 10:00
                _occurrence(a, "scan-new", spec("DISCOVERY", 4), run),  # 12:00
                _occurrence(b, "scan-b", spec("DISCOVERY", 3), run),  # 11:30 (odd: +30 min)
            ]
        )
    assert (await summary((a,)))[1:4:2] == ((note,), T + timedelta(hours=4))
    assert (await summary(None))[3] == T + timedelta(hours=4)

    async with store.session() as s:
        assert await s.occurrences.delete(a, "att1")
        assert await s.occurrences.delete(a, "scan-new")
    # Another of a's attestations still names the note; a's newest scan is now 10:00, and
    # every project's is b's 11:30.
    assert (await summary((a,)))[1:4:2] == ((note,), T + timedelta(hours=2))
    assert (await summary(None))[1:4:2] == ((note,), T + timedelta(hours=3, minutes=30))

    async with store.session() as s:
        assert await s.occurrences.delete(a, "att2")
        assert await s.occurrences.delete(b, "scan-b")
    assert (await summary((a,)))[1] == ()
    # b's attestation still names it for every project; only a's old scan is left.
    assert (await summary(None))[1:4:2] == ((note,), T + timedelta(hours=2))

    async with store.session() as s:
        assert await s.occurrences.delete(b, "att3")
        assert await s.occurrences.delete(a, "scan-old")
    assert await summary((b,)) == ()  # b has no occurrence left: no summary
    assert await summary(None) == ()


async def test_the_newest_scan_follows_facts_added_and_removed_at_the_same_instant(
    store: MetadataStore,
) -> None:
    """A re-dated scan (deleted and written again at one instant in one unit of work) keeps
    the image's newest scan; a fact added and removed again in one unit of work leaves it as
    it was; of two added at one instant and one removed, the other holds it."""
    run = f"instant{next(_run)}"
    a = f"{run}-a"

    async def newest() -> Any:
        async with store.session(readonly=True) as s:
            rows = await s.image_summaries.page(
                SummaryQuery(projects=(a,), decision_project=a, image=f"/{run}/"), None, 10
            )
        assert len(rows) == 1
        return kept(rows).popitem()[1][3]

    def scan(oid: str, hour: int) -> OccurrenceRecord:
        return _occurrence(a, oid, Spec("DISCOVERY", 0, 0, "HIGH", "", hour), run)

    async with store.session() as s:
        await s.occurrences.insert([scan("old", 2), scan("new", 4)])
    assert await newest() == T + timedelta(hours=4)

    async with store.session() as s:  # the scanner's re-dated DISCOVERY, same instant
        assert await s.occurrences.delete(a, "new")
        await s.occurrences.insert([scan("again", 4)])
    assert await newest() == T + timedelta(hours=4)

    async with store.session() as s:  # added and removed again: nothing changed
        await s.occurrences.insert([scan("brief", 6)])
        assert await s.occurrences.delete(a, "brief")
        assert await s.occurrences.delete(a, "again")
    assert await newest() == T + timedelta(hours=2)

    async with store.session() as s:  # two added at one instant, one of them removed
        await s.occurrences.insert([scan("x", 6), scan("y", 6)])
        assert await s.occurrences.delete(a, "x")
    assert await newest() == T + timedelta(hours=6)

    async with store.session() as s:  # both dated 6 removed, one more added at 6 first
        await s.occurrences.insert([scan("z", 6)])
        assert await s.occurrences.delete(a, "y")
        assert await s.occurrences.delete(a, "z")
    assert await newest() == T + timedelta(hours=2)

    async with store.session() as s:  # written over at its own instant: still the newest
        assert await s.occurrences.update_many([scan("old", 2)]) == ["old"]
    assert await newest() == T + timedelta(hours=2)
    async with store.session() as s:  # dated later, then earlier than another scan
        await s.occurrences.insert([scan("mid", 0)])
        assert await s.occurrences.update_many([scan("old", 4)]) == ["old"]
    assert await newest() == T + timedelta(hours=4)
    async with store.session() as s:
        assert await s.occurrences.update_many([scan("old", -2)]) == ["old"]
    assert await newest() == T
    async with store.session() as s:  # updated, then deleted in the same unit of work
        assert await s.occurrences.update_many([scan("old", 6)]) == ["old"]
        assert await s.occurrences.delete(a, "old")
    assert await newest() == T


async def _fill(store: MetadataStore) -> list[str]:
    """Six images in two projects: an attestation on the even ones, findings of rising
    severity, scans at rising hours."""
    images = [f"registry.example/q/app{i}@sha256:{i:064x}" for i in range(6)]
    async with store.session() as s:
        records = []
        for i, image in enumerate(images):
            project = ("qa", "qb")[i % 2]
            if i % 2 == 0:
                records.append(_att(project, f"a{i}", image))
            records.append(_vuln(project, f"v{i}", image, SEVERITIES[i % 6], i))
        await s.occurrences.insert(records)
        await s.decisions.insert(
            [
                decision_record("prod", "d1", outcome="denied", images=(images[1], images[2])),
                decision_record("prod", "d2", outcome="allowed", images=(images[2],)),
                decision_record("other", "d3", outcome="denied", images=(images[3],)),
            ]
        )
    return images


def _att(project: str, oid: str, image: str) -> OccurrenceRecord:
    r = _occurrence(project, oid, Spec("ATTESTATION", 0, 0, "LOW", "", 0), "x")
    return OccurrenceRecord(project, oid, r.kind, "sec", "qa", image, r.occurrence)


def _vuln(project: str, oid: str, image: str, severity: str, hour: int) -> OccurrenceRecord:
    r = _occurrence(project, oid, Spec("VULNERABILITY", 0, 1, severity, "", hour * 2), "x")
    return OccurrenceRecord(project, oid, r.kind, r.note_project, r.note_id, image, r.occurrence)


@pytest.mark.parametrize("scope", [None, ("qa", "qb")])
async def test_filters_sorts_and_keyset_pages(
    store: MetadataStore, scope: tuple[str, ...] | None
) -> None:
    images = await _fill(store)

    def q(**kw: Any) -> SummaryQuery:
        return SummaryQuery(projects=scope, decision_project="prod", **kw)

    async with store.session(readonly=True) as s:
        page = s.image_summaries.page

        async def names(query: SummaryQuery, limit: int = 100) -> list[str]:
            return [r.summary.resource for r in await page(query, None, limit)]

        assert await names(q()) == images
        assert await names(q(present="projects/sec/notes/qa")) == images[0::2]
        assert await names(q(missing="projects/sec/notes/qa")) == images[1::2]
        assert await names(q(decision="allowed")) == [images[2]]
        assert await names(q(decision="denied")) == [images[1]]  # d3 is another project's
        assert await names(q(decision="none")) == [images[i] for i in (0, 3, 4, 5)]
        assert await names(q(severity="CRITICAL")) == [images[5]]
        assert await names(q(severity="NONE")) == []
        assert await names(q(image="APP3")) == [images[3]]
        assert await names(q(scanned_since=T + timedelta(hours=6))) == images[3:]
        assert await names(q(not_scanned_since=T + timedelta(hours=6))) == images[:3]
        assert await names(q(sort="severity", descending=True)) == images[::-1]
        assert await names(q(sort="scan")) == images
        assert await names(q(sort="decision")) == [images[i] for i in (0, 3, 4, 5, 2, 1)]
        # Keyset pages of every sort, both ways, walk the same rows as one page does.
        for sort in ("image", "decision", "severity", "scan", "occurrences"):
            for descending in (False, True):
                query = q(sort=sort, descending=descending)
                whole = await names(query)
                walked: list[str] = []
                after = None
                while True:
                    rows = await page(query, after, 2)
                    if not rows:
                        break
                    walked += [r.summary.resource for r in rows]
                    after = (rows[-1].key(sort), rows[-1].summary.resource)
                assert walked == whole, (sort, descending)
        assert await s.image_summaries.count(q(present="projects/sec/notes/qa")) == 3
        # A bounded count: exact up to the bound, "more than the bound" past it.
        at_most = s.image_summaries.count_at_most
        assert await at_most(q(present="projects/sec/notes/qa"), 3) == (3, False)
        assert await at_most(q(present="projects/sec/notes/qa"), 2) == (2, True)
        assert await at_most(q(image="app"), 5) == (5, True)
        assert await at_most(q(image="app"), 6) == (6, False)
        # No criterion over one scope: the kept totals answer, exactly, whatever the bound;
        # over several projects' summaries merged, the bound holds.
        assert await at_most(q(), 2) == ((6, False) if scope is None else (2, True))
        totals = await s.image_summaries.totals(scope)
        assert totals.images == 6
        assert totals.open_counts == (1, 1, 1, 1, 1, 1)


async def test_a_project_scope_sees_only_its_projects_occurrences(store: MetadataStore) -> None:
    images = await _fill(store)
    async with store.session(readonly=True) as s:
        only_a = SummaryQuery(projects=("qa",), decision_project="prod")
        rows = await s.image_summaries.page(only_a, None, 100)
        assert [r.summary.resource for r in rows] == images[0::2]
        assert (await s.image_summaries.totals(("qa",))).images == 3
        for project, mine in (("qa", images[0::2]), ("qb", images[1::2])):
            found = await s.image_summaries.impact("cve-2024-0001", (project,), 100)
            assert [r.image for r in found] == mine
        assert await s.image_summaries.page(SummaryQuery((), "prod"), None, 10) == []
        assert await s.image_summaries.impact("", None, 10) == []


async def test_a_rebuild_from_the_facts_finds_what_the_deltas_kept(store: MetadataStore) -> None:
    """The set-based fold (migration 0012's backfill, ``rebuild``) and the deltas kept on
    write (ADR 0205) agree, attestation notes and totals included."""
    from chainproof.store.sql import SqlStore
    from chainproof.store.sql.summaries import rebuild, rebuild_totals

    if not isinstance(store, SqlStore):
        pytest.skip("the set-based rebuild is the SQL adapters'")
    images = await _fill(store)
    async with store.session() as s:  # a removal the deltas must have applied
        assert await s.occurrences.delete("qb", "v1")
    query = SummaryQuery(projects=None, decision_project="prod")

    async def state() -> tuple[Any, ...]:
        async with store.session(readonly=True) as s:
            rows = await s.image_summaries.page(query, None, 100)
            return kept(rows), await s.image_summaries.totals(None)

    before = await state()
    assert len(before[0]) == len(images) - 1  # app1 had only v1
    async with store.engine.begin() as c:
        await c.run_sync(rebuild)
        await c.run_sync(rebuild_totals)
    assert await state() == before


async def test_copies_of_one_template_summarise_as_separate_records(
    store: MetadataStore,
) -> None:
    """Records sharing a ``template`` (a scanner's copies: its facts derived once) give the
    same summaries and reverse-impact rows as the same records written without one — two
    templates, several images each, VEX-closed and open findings, a copy without resource."""
    run = f"copies{next(_run)}"
    specs = [
        Spec("VULNERABILITY", 0, 1, "HIGH", "", 2),
        Spec("VULNERABILITY", 0, 2, "CRITICAL", "NOT_AFFECTED", 3),
    ]
    for project, shared in (("plain", False), ("shared", True)):
        records = []
        for t, spec in enumerate(specs):
            base = _occurrence(project, f"t{t}", spec, run).occurrence
            for image in (0, 1, 2, 3):
                r = _occurrence(project, f"c{t}-{image}", replace(spec, resource=image), run)
                records.append(
                    OccurrenceRecord(
                        r.project,
                        r.occurrence_id,
                        r.kind,
                        r.note_project,
                        r.note_id,
                        r.resource,
                        r.occurrence,
                        template=base if shared else None,
                    )
                )
        async with store.session() as s:
            await s.occurrences.insert(records)
    async with store.session(readonly=True) as s:
        answers = []
        for project in ("plain", "shared"):
            rows = await s.image_summaries.page(SummaryQuery((project,), "prod"), None, 100)
            found = await s.image_summaries.impact("cve-2024-0001", (project,), 100)
            answers.append(([r.summary for r in rows], [(f.image, f.detail) for f in found]))
    assert answers[0] == answers[1]
    summaries, impact = answers[0]
    assert len(summaries) == 3 and len(impact) == 3
    assert {s.worst_open for s in summaries} == {"HIGH"}  # the CRITICAL one is NOT_AFFECTED


async def test_impact_reads_in_chunks_and_keeps_one_images_many_matches_whole(
    store: MetadataStore,
) -> None:
    """One image whose findings name the same package many times (more rows of one (term,
    image) than a chunk holds) and a few others: every bound gives the first rows of the
    whole answer, none lost or repeated where a chunk ends."""
    crowded = "registry.example/c/app0@sha256:aa"
    others = [f"registry.example/c/app{i}@sha256:aa" for i in range(1, 4)]
    records = [_vuln("qa", f"v{k}", crowded, SEVERITIES[k % 6], k) for k in range(6)]
    records += [_vuln("qa", f"w{i}", image, "HIGH", i) for i, image in enumerate(others)]
    async with store.session() as s:
        await s.occurrences.insert(records)
    expected = impact_oracle(records, "pkg:npm/lib1")
    assert len(expected) == 6 + 3
    async with store.session(readonly=True) as s:
        for limit in range(1, len(expected) + 2):
            got = await s.image_summaries.impact("pkg:npm/lib1", None, limit)
            assert got == expected[:limit], limit


@pytest.mark.postgres
async def test_the_trigram_index_finds_what_the_scan_finds(pg_database_url: str) -> None:
    """On PostgreSQL the images list's substring search is served by the pg_trgm index of
    migration 0014: with the planner made to use it, and made to scan instead, every needle
    (short ones, upper case, LIKE's own characters) finds the same images in the same order."""
    import sqlalchemy as sa

    from contract.conftest import empty_postgres_store

    store = await empty_postgres_store(pg_database_url)
    names = [
        "registry.example/q/app4242@sha256:aa",
        "registry.example/q/app42420@sha256:aa",
        "registry.example/q/APP_42%x@sha256:aa",
        "gcr.io/other/web@sha256:bb",
        "registry.example/ünï/☃@sha256:cc",
    ] + [f"registry.example/bulk/svc{i}@sha256:{i:064x}" for i in range(3000)]
    try:
        async with store.session() as s:
            await s.occurrences.insert(
                [_vuln("qa", f"v{i}", image, "HIGH", 1) for i, image in enumerate(names)]
            )
        async with store.engine.connect() as connection:
            # As autovacuum would: statistics, and the GIN index's pending entries merged.
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sa.text("VACUUM ANALYZE image_summaries"))
            indexes = await connection.execute(
                sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'image_summaries'")
            )
            assert "ix_image_summaries_resource_trgm" in {r[0] for r in indexes}
        needles = ["app4242", "APP42", "_42%", "%", "_", "/", "ap", "☃", "ünï/", "svc29", "zzz"]
        for needle in needles:
            found: dict[str, list[str]] = {}
            query = SummaryQuery(None, "prod", image=needle)
            for plan, off in (
                ("index", ("seqscan", "indexscan", "indexonlyscan")),  # bitmap scans only
                ("scan", ("bitmapscan", "indexscan", "indexonlyscan")),
            ):
                async with store.session() as s:
                    repository = s.image_summaries
                    connection = repository._c  # type: ignore[attr-defined]
                    for name in off:
                        await connection.execute(sa.text(f"SET LOCAL enable_{name} = off"))
                    # The plan of the page's own statement (as _page builds it).
                    stmt, src, _ = repository._select(query)  # type: ignore[attr-defined]
                    sql = (
                        stmt.order_by(src.c.resource)
                        .limit(1000)
                        .compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
                    )
                    explained = await connection.exec_driver_sql(f"EXPLAIN {sql}")
                    plan_text = "\n".join(str(r[0]) for r in explained.all())
                    uses = "ix_image_summaries_resource_trgm" in plan_text
                    # A needle of fewer than three characters has no trigram to look up.
                    if len(needle) >= 3 or plan == "scan":
                        assert uses == (plan == "index"), (needle, plan)
                    rows = await s.image_summaries.page(query, None, 5000)
                    found[plan] = [r.summary.resource for r in rows]
                    total = await s.image_summaries.count(query)
                    assert total == len(found[plan])
            expected = sorted(n for n in names if needle.lower() in n.lower())
            assert found["index"] == found["scan"] == expected, needle
    finally:
        await store.close()


async def test_totals_stay_exact_under_concurrent_writers(store: MetadataStore) -> None:
    """Writers of the same and of different images at once (on PostgreSQL truly at once, on
    different stripes or the same): the kept totals equal a count of the summaries."""
    import asyncio

    shared = "registry.example/t/shared@sha256:aa"

    async def writer(k: int) -> None:
        async with store.session() as s:
            own = f"registry.example/t/own{k}@sha256:aa"
            await s.occurrences.insert(
                [
                    _vuln("qa" if k % 2 else "qb", f"c{k}-{j}", image, SEVERITIES[j % 6], j)
                    for j, image in enumerate((shared, own, own))
                ]
            )

    await asyncio.gather(*(writer(k) for k in range(8)))
    async with store.session() as s:  # and one that deletes, for the negative deltas
        await s.occurrences.delete_many("qa", ["c1-1", "c1-2"])
    async with store.session(readonly=True) as s:
        for scope in (None, ("qa",), ("qb",)):
            totals = await s.image_summaries.totals(scope)
            rows = await s.image_summaries.page(SummaryQuery(scope, "prod"), None, 100)
            assert totals.images == len(rows) == (8 if scope is None else 4 + (scope == ("qb",)))
            assert totals.open_counts == tuple(
                sum(r.summary.open_counts[i] for r in rows) for i in range(len(SEVERITIES))
            )
