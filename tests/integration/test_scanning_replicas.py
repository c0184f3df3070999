"""The scanner across replicas and in batches, on memory, SQLite and PostgreSQL.

* One advisory database: an import through one replica is matched by every other replica at
  its next scan (no restart), replayed from the change log, or read again whole when the log
  no longer reaches back.
* Re-matching after an import reads and writes per batch of images, not per image, and
  touches only what the import changed: the findings of other advisories stay as they are.
* Batches are written behind (ADR 0215): the next one is read while one writes, and a
  failure in either stage ends the import with nothing still writing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.errors import AlreadyExists
from chainproof.services.scribe import scanning
from chainproof.services.scribe.scanning import ScanService
from chainproof.store.port import MetadataStore, UnitOfWork
from chainproof.vuln.osv import parse_record
from unit.services.judge_fixtures import System


def image(i: int) -> str:
    return f"registry.example/app{i}@sha256:{i:064x}"


def advisory(advisory_id: str, name: str, fixed: str, modified: str = "2026-01-01") -> Any:
    return parse_record(
        {
            "id": advisory_id,
            "modified": f"{modified}T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": name},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                    ],
                }
            ],
        }
    )


async def sbom(system: System, resource: str, packages: dict[str, str]) -> None:
    """PACKAGE occurrences as ingestion writes them: one note per package."""
    for name in packages:
        with contextlib.suppress(AlreadyExists):  # another image holds the same package
            await system.grafeas.create_note(
                "projects/prod", f"pkg-{name}", note_from_json({"package": {"name": name}})
            )
    await system.grafeas.batch_create_occurrences(
        "projects/prod",
        [
            occurrence_from_json(
                {
                    "resourceUri": resource,
                    "noteName": f"projects/prod/notes/pkg-{name}",
                    "package": {
                        "name": name,
                        "version": {"name": version, "kind": "NORMAL", "fullName": version},
                        "location": [{"cpeUri": f"pkg:pypi/{name}@{version}"}],
                    },
                }
            )
            for name, version in packages.items()
        ],
    )


async def findings(scanner: ScanService, advisory_id: str) -> set[str]:
    return {r.resource for r in await scanner.affected_images(advisory_id)}


class Hub:
    """An in-process change channel between replicas (our own port; PostgreSQL has the real
    one, LISTEN/NOTIFY, used instead when the test runs there)."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def channel(self) -> Any:
        hub = self

        class Channel:
            async def publish(self, payload: str) -> None:
                for deliver in hub.listeners:
                    deliver(payload)

            async def listen(self, on_message: Any, on_gap: Any) -> None:
                hub.listeners.append(on_message)
                on_gap()
                await asyncio.Event().wait()

        return Channel()


#: Running change feeds, referenced so the event loop does not drop their tasks.
_FEEDS: set[asyncio.Task[None]] = set()


async def replicas(store: MetadataStore) -> tuple[System, System, ScanService, ScanService]:
    """Two servers on one database, their change feeds connected as in production."""
    system = System(store=store)  # type: ignore[arg-type]
    other = system.replica()
    hub = Hub()
    for feed in (system.changes, other.changes):
        # The feed is a worker the host runs; ChangeFeed.close() cancels it.
        _FEEDS.add(asyncio.create_task(feed.run(store.change_channel() or hub.channel())))
    a = ScanService(store, system.grafeas, clock=system.clock, changes=system.changes)
    b = ScanService(store, other.grafeas, clock=system.clock, changes=other.changes)
    await asyncio.sleep(0.05)  # the listeners are up
    return system, other, a, b


async def heard(scanner: ScanService, resource: str) -> None:
    """Wait until a notice about ``resource`` has reached ``scanner`` (PostgreSQL: a few ms)."""
    for _ in range(200):
        if resource in scanner._dirty:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"no change notice about {resource} arrived")


async def test_an_import_through_one_replica_is_matched_by_another(
    store: MetadataStore,
) -> None:
    system, other, a, b = await replicas(store)
    await a.import_advisories([advisory("PYSEC-1", "alpha", "2.0")])
    await sbom(other, image(1), {"alpha": "1.0", "beta": "1.0"})
    assert (await b.scan_image("prod", image(1))).opened == 1  # b loads generation 1
    await heard(a, image(1))  # a learns of the SBOM b's side wrote
    # A second import through a: b replays the log at its next scan, without a restart.
    await a.import_advisories([advisory("PYSEC-2", "beta", "1.5")])
    await sbom(other, image(2), {"beta": "1.0"})
    report = await b.scan_image("prod", image(2))
    assert [f.advisory_id for f in report.findings] == ["PYSEC-2"]
    assert b.generation == a.generation == 2
    # A withdrawal through b is seen by a.
    withdrawn = {**dict(advisory("PYSEC-2", "beta", "1.5").raw)}
    withdrawn["modified"] = "2026-02-01T00:00:00Z"
    withdrawn["withdrawn"] = "2026-02-01T00:00:00Z"
    gone = await b.import_advisories([parse_record(withdrawn)])
    assert gone.withdrawn == 1 and gone.findings_closed == 2
    assert await findings(a, "PYSEC-2") == set()
    await sbom(system, image(3), {"beta": "1.0"})
    assert (await a.scan_image("prod", image(3))).findings == []  # a synced: withdrawn
    assert a.generation == 3 and "PYSEC-2" not in a.index
    for feed in (system.changes, other.changes):
        await feed.close()


async def test_an_unheard_change_makes_a_replica_index_every_image_again(
    store: MetadataStore,
) -> None:
    """No channel (a lost notice looks the same): the gap makes the next import read every
    image's packages again instead of trusting what it had indexed."""
    system = System(store=store)  # type: ignore[arg-type]
    other = system.replica()
    a = ScanService(store, system.grafeas, clock=system.clock, changes=system.changes)
    await a.import_advisories([advisory("PYSEC-1", "alpha", "2.0")])
    await sbom(other, image(1), {"beta": "1.0"})  # a hears nothing of it
    system.changes._missed()  # what the listener does after a reconnection
    report = await a.import_advisories([advisory("PYSEC-2", "beta", "1.5")])
    assert report.images_rematched == 1 and await findings(a, "PYSEC-2") == {image(1)}


async def test_a_replica_the_log_no_longer_reaches_reads_everything_again(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scanning, "MAX_LOG", 2)
    system = System(store=store)  # type: ignore[arg-type]
    a = ScanService(store, system.grafeas, clock=system.clock)
    b = ScanService(store, system.replica().grafeas, clock=system.clock)
    await a.import_advisories([advisory("PYSEC-0", "alpha", "2.0")])
    await sbom(system, image(1), {"alpha": "1.0"})
    await b.scan_image("prod", image(1))
    assert b.generation == 1
    for n in range(1, 5):
        await a.import_advisories([advisory(f"PYSEC-{n}", "alpha", "2.0")])
    await b.scan_image("prod", image(1))
    assert b.generation == 5 and all(f"PYSEC-{n}" in b.index for n in range(5))
    async with store.session(readonly=True) as s:
        log = await s.documents.page("osv", scanning.CHANGES, None, 100)
    assert [d.doc_id for d in log] == ["000000000004", "000000000005"]  # pruned to MAX_LOG


class CountingStore:
    """Our own store port, counting the occurrence lists and write sessions."""

    def __init__(self, inner: MetadataStore) -> None:
        self.inner = inner
        self.lists = 0
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @asynccontextmanager
    async def session(self, *, readonly: bool = False) -> Iterator[UnitOfWork]:  # type: ignore[misc]
        if not readonly:
            self.writes += 1
        async with self.inner.session(readonly=readonly) as s:
            real = s.occurrences.page

            async def counted(*args: Any, **kwargs: Any) -> Any:
                self.lists += 1
                return await real(*args, **kwargs)

            s.occurrences.page = counted  # type: ignore[method-assign]
            yield s


async def test_a_rematch_reads_and_writes_per_batch_and_keeps_other_findings(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scanning, "REMATCH_BATCH", 10)
    counting = CountingStore(store)
    system = System(store=counting)  # type: ignore[arg-type]
    scanner = ScanService(counting, system.grafeas, clock=system.clock)  # type: ignore[arg-type]
    await scanner.import_advisories([advisory("PYSEC-OLD", "alpha", "2.0")])
    for i in range(25):
        await sbom(system, image(i), {"alpha": "1.0", "beta": "1.0", f"own{i}": "1.0"})
    for i in range(25):
        await scanner.scan_image("prod", image(i))
    kept = {r.occurrence.name for r in await scanner.affected_images("PYSEC-OLD")}
    assert len(kept) == 25
    counting.lists = counting.writes = 0
    report = await scanner.import_advisories([advisory("PYSEC-NEW", "beta", "1.5")])
    assert report.images_rematched == 25 and report.findings_opened == 25
    # 3 batches: 2 reads each (packages under the touched notes; findings of the changed
    # advisories and DISCOVERYs), whatever the number of images in a batch.
    assert counting.lists <= 3 * 2 + 2, counting.lists
    # One write per batch; the import itself: the provider project and scanner note (both
    # already there), the records with the generation and log, the new notes.
    assert counting.writes <= 3 + 4, counting.writes
    assert await findings(scanner, "PYSEC-NEW") == {image(i) for i in range(25)}
    # The findings of the advisory that did not change are the very same occurrences.
    assert {r.occurrence.name for r in await scanner.affected_images("PYSEC-OLD")} == kept
    page = await system.grafeas.list_occurrences("projects/prod", 'kind="DISCOVERY"', 100, "")
    assert len(page.items) == 25  # one per image, dated again


async def test_an_image_never_scanned_gets_a_full_scan_when_an_import_touches_it(
    store: MetadataStore,
) -> None:
    system = System(store=store)  # type: ignore[arg-type]
    scanner = ScanService(store, system.grafeas, clock=system.clock)
    await sbom(system, image(1), {"alpha": "1.0", "beta": "1.0"})
    # No advisories yet: nothing scanned (a scan would prove nothing), but the image is known.
    with pytest.raises(Exception, match="no OSV advisories"):
        await scanner.scan_image("prod", image(1))
    await scanner.import_advisories([advisory("PYSEC-A", "alpha", "2.0")])
    report = await scanner.import_advisories([advisory("PYSEC-B", "beta", "2.0")])
    assert report.images_rematched == 1
    assert await findings(scanner, "PYSEC-A") == {image(1)}
    assert await findings(scanner, "PYSEC-B") == {image(1)}


class PacedStore:
    """Our own store port whose sessions take turns of the event loop (a read one before it
    starts, a write a few before it commits), as a database's statements take their time; it
    counts the reads that ran while a write session was open, and can fail one write."""

    def __init__(self, inner: MetadataStore) -> None:
        self.inner = inner
        self.writes = 0
        self.open_writes = 0
        self.reads_beside_a_write = 0
        self.fail_write: int | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @asynccontextmanager
    async def session(self, *, readonly: bool = False) -> Iterator[UnitOfWork]:  # type: ignore[misc]
        if readonly:
            await asyncio.sleep(0)  # a read takes its time as well
            self.reads_beside_a_write += self.open_writes > 0
            async with self.inner.session(readonly=True) as s:
                yield s
            return
        self.writes += 1
        number = self.writes
        self.open_writes += 1
        try:
            async with self.inner.session() as s:
                yield s
                for _ in range(5):  # the database at work: the loop runs other tasks
                    await asyncio.sleep(0)
                if number == self.fail_write:
                    raise RuntimeError("the database went away")
        finally:
            self.open_writes -= 1


async def paced_scanner(store: MetadataStore, images: int) -> tuple[PacedStore, ScanService]:
    paced = PacedStore(store)
    system = System(store=paced)  # type: ignore[arg-type]
    scanner = ScanService(paced, system.grafeas, clock=system.clock)  # type: ignore[arg-type]
    system.grafeas.add_listener(scanner.on_occurrences)  # as bootstrap wires it
    await scanner.import_advisories([advisory("PYSEC-OLD", "alpha", "2.0")])
    for i in range(images):
        await sbom(system, image(i), {"alpha": "1.0", "beta": "1.0", f"own{i}": "1.0"})
    await scanner.drain()
    return paced, scanner


async def test_the_next_rematch_batch_is_read_while_one_writes(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two re-match batches are under way at once (ADR 0215): the next batch's reads run
    while the previous batch's write transaction is open, and what they write together is
    what batches one after another write: every image's finding, once."""
    monkeypatch.setattr(scanning, "REMATCH_BATCH", 3)
    paced, scanner = await paced_scanner(store, 12)
    paced.reads_beside_a_write = 0
    report = await scanner.import_advisories([advisory("PYSEC-NEW", "beta", "1.5")])
    assert report.images_rematched == 12 and report.findings_opened == 12
    assert paced.reads_beside_a_write > 0
    assert paced.open_writes == 0
    assert await findings(scanner, "PYSEC-NEW") == {image(i) for i in range(12)}
    found = await scanner.affected_images("PYSEC-NEW")
    assert len(found) == 12  # none written twice
    assert await findings(scanner, "PYSEC-OLD") == {image(i) for i in range(12)}


async def test_a_failed_rematch_batch_fails_the_import_and_nothing_writes_after_it(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When one batch's write fails, the import raises that error; the batch queued beside
    it is stopped, so no write of this import begins or stays open after the call returns,
    and the failed batch left nothing behind (its transaction rolled back)."""
    monkeypatch.setattr(scanning, "REMATCH_BATCH", 3)
    paced, scanner = await paced_scanner(store, 12)
    rematch = ScanService._rematch

    async def failing_second_batch(self: ScanService, *args: Any) -> Any:
        paced.fail_write = paced.writes + 2  # the second batch's write transaction
        return await rematch(self, *args)

    monkeypatch.setattr(ScanService, "_rematch", failing_second_batch)
    with pytest.raises(RuntimeError, match="the database went away"):
        await scanner.import_advisories([advisory("PYSEC-NEW", "beta", "1.5")])
    writes = paced.writes
    assert paced.open_writes == 0
    for _ in range(50):
        await asyncio.sleep(0)
    assert paced.writes == writes  # nothing queued behind the failure went on
    written = await findings(scanner, "PYSEC-NEW")
    # Batches are whole or absent: the failed one's three images have no finding.
    assert len(written) % 3 == 0 and len(written) < 12
    assert written <= {image(i) for i in range(12)}


async def test_a_batch_that_fails_to_read_waits_for_the_write_under_way(
    store: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the next batch fails to read while the previous one writes, the import raises
    that error only once the write has ended: no write of it is still open when it returns,
    and the first batch's findings are stored whole."""
    monkeypatch.setattr(scanning, "REMATCH_BATCH", 3)
    paced, scanner = await paced_scanner(store, 12)
    touched = ScanService._touched_packages
    calls: list[int] = []

    async def failing_second_read(self: ScanService, *args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            await asyncio.sleep(0)  # the first batch's write is under way
            raise RuntimeError("the read failed")
        return await touched(self, *args)

    monkeypatch.setattr(ScanService, "_touched_packages", failing_second_read)
    with pytest.raises(RuntimeError, match="the read failed"):
        await scanner.import_advisories([advisory("PYSEC-NEW", "beta", "1.5")])
    assert paced.open_writes == 0
    first = await findings(scanner, "PYSEC-NEW")
    assert len(first) == 3 and first <= {image(i) for i in range(12)}
