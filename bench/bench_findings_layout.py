"""Benchmark: what a full match's findings cost the SQLite store, row layout against row layout
(ADR 0216) — the measurement behind the proposed narrow findings table.

    .venv/bin/python bench/bench_findings_layout.py [--findings 446709] [--templates 57050]
        [--batches 5] [--only TEXT]

The full match of bench_scan_service.py writes 446,709 findings of 1,000 images in five
transactions, made from 57,050 distinct (advisory, package, CPE) templates. This writes as
many rows, with the sqlite3 driver alone (no chainproof code on the path), into a database
made by the store's own migrations, in as many transactions:

- **today's rows**: one ``occurrences`` row per finding (its ~900-byte JSON, the primary key
  and four secondary indexes), one ``image_facts`` row and two ``impact_terms`` rows, as the
  store's summaries write them;
- the same before migration 0016 (with the ID index SQLite no longer keeps), with
  ``image_facts`` and ``impact_terms`` (then ``occurrences`` too) as WITHOUT ROWID tables,
  and with a page cache of 16, 64 and 256 MiB instead of SQLite's default 2 MiB;
- the occurrence rows alone, then without each secondary index in turn, with all of them
  but an empty document, and with none: where the cost of a row is;
- **narrow**: one row per finding (project, ID, resource, advisory, template number) under a
  primary key and two indexes, the shared document stored once per template.

Nothing here changes the store; it measures what a change of layout could buy. The floor the
figures are held against is the last line: the same number of rows under the primary key
only, the least any layout can write.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from chainproof.services.scribe.grafeas import new_occurrence_ids
from chainproof.store.factory import create_store

# A finding as the scanner stores it (bench_scan_service.py's first, verbatim).
DOCUMENT = (
    '{"name":"projects/prod/occurrences/01a2434e-a570-7005-9ee7-269ca1c43538","resourceUri":'
    '"reg.example/app0@sha256:0000000000000000000000000000000000000000000000000000000000000000",'
    '"noteName":"projects/osv/notes/BENCH-4583","kind":"VULNERABILITY","createTime":'
    '"2026-11-22T12:00:00Z","updateTime":"2026-11-22T12:00:00Z","vulnerability":{"severity":'
    '"HIGH","cvssScore":7.5,"packageIssue":[{"affectedCpeUri":"pkg:deb/debian/debian-pkg658@'
    '4.7.15-8?arch=amd64&distro=debian-12","affectedPackage":"debian-pkg658","affectedVersion":'
    '{"name":"4.7.15-8","kind":"NORMAL"},"fixedVersion":{"name":"5.0.10-5+deb12u4","kind":'
    '"NORMAL"},"fixAvailable":true,"packageType":"Debian","effectiveSeverity":"HIGH"}],'
    '"shortDescription":"BENCH-4583","longDescription":"ECOSYSTEM range: introduced 0, fixed '
    '5.0.10-5+deb12u4","effectiveSeverity":"HIGH","fixAvailable":true,"cvssVersion":'
    '"CVSS_VERSION_3","extraDetails":"osv=BENCH-4583"}}'
)
#: The occurrences' secondary indexes on SQLite (since migration 0016).
SECONDARY = (
    "ix_occurrences_resource",
    "ix_occurrences_note",
    "ix_occurrences_note_resource",
    "ix_occurrences_kind",
)
#: The index migration 0016 dropped on SQLite, as migration 0007 made it.
_ID_INDEX = (
    "CREATE INDEX ix_occurrences_vulnerability_id ON occurrences (project, upper(note_id),"
    " resource) WHERE kind = 'VULNERABILITY'"
)
_OCCURRENCE = (
    "INSERT INTO occurrences (project, occurrence_id, kind, note_project, note_id, resource,"
    " data, create_time, update_time) VALUES ('f', ?, 'VULNERABILITY', 'osv', ?, ?, ?,"
    " '2026-12-05 00:00:00.000000', '2026-12-05 00:00:00.000000')"
)
Row = tuple[str, str, str, int]  # occurrence ID, resource, advisory, template
Write = Callable[[sqlite3.Connection, Sequence[Row]], None]


def _occurrences(document: str) -> Write:
    def write(c: sqlite3.Connection, rows: Sequence[Row]) -> None:
        c.executemany(_OCCURRENCE, [(i, n, r, document) for i, r, n, _ in rows])

    return write


def _today(c: sqlite3.Connection, rows: Sequence[Row]) -> None:
    _occurrences(DOCUMENT)(c, rows)
    c.executemany(
        "INSERT INTO image_facts VALUES ('f', ?, ?, '', 3, NULL)", [(i, r) for i, r, _, _ in rows]
    )
    c.executemany(
        "INSERT INTO impact_terms VALUES ('f', ?, ?, ?, ?, 'VULNERABILITY', 'x')",
        [
            term
            for i, r, n, _ in rows
            for term in ((i, "id", n, r), (i, "affected", "pkg:deb/debian/debian-pkg658", r))
        ],
    )


def _narrow_schema(c: sqlite3.Connection) -> None:
    c.execute(
        "CREATE TABLE findings (project TEXT NOT NULL, occurrence_id TEXT NOT NULL,"
        " resource TEXT NOT NULL, note_id TEXT NOT NULL, template INTEGER NOT NULL,"
        " PRIMARY KEY (project, occurrence_id))"
    )
    c.execute("CREATE INDEX ix_findings_resource ON findings (project, resource)")
    c.execute("CREATE INDEX ix_findings_note ON findings (note_id, resource)")
    c.execute("CREATE TABLE finding_templates (id INTEGER PRIMARY KEY, data TEXT NOT NULL)")


def _narrow(c: sqlite3.Connection, rows: Sequence[Row]) -> None:
    c.executemany("INSERT INTO findings VALUES ('f', ?, ?, ?, ?)", rows)
    c.executemany(
        "INSERT OR IGNORE INTO finding_templates VALUES (?, ?)",
        [(t, DOCUMENT) for t in sorted({t for *_, t in rows})],
    )


def _with_id_index(c: sqlite3.Connection) -> None:
    c.execute(_ID_INDEX)


def _without_rowid(*tables: str) -> Callable[[sqlite3.Connection], None]:
    """The (empty) ``tables`` made again as WITHOUT ROWID tables, their indexes as they were:
    the primary key is then the table's own B-tree, not a second one beside the rowid's."""

    def setup(c: sqlite3.Connection) -> None:
        for table in tables:
            (ddl,) = c.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            indexes = [
                sql
                for (sql,) in c.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
                    " AND sql IS NOT NULL",
                    (table,),
                )
            ]
            c.execute(f"DROP TABLE {table}")
            c.execute(f"{ddl} WITHOUT ROWID")
            for sql in indexes:
                c.execute(sql)

    return setup


def _cache(mib: int) -> Callable[[sqlite3.Connection], None]:
    """A page cache of ``mib`` MiB instead of SQLite's default 2 MiB: a transaction whose
    dirty pages outgrow the cache spills them into the log before its commit, and writes a
    page again each time an index insert dirties it anew."""

    def setup(c: sqlite3.Connection) -> None:
        c.execute(f"PRAGMA cache_size=-{mib * 1024:d}")

    return setup


def _drop(*indexes: str) -> Callable[[sqlite3.Connection], None]:
    def setup(c: sqlite3.Connection) -> None:
        for index in indexes:
            c.execute(f"DROP INDEX {index}")

    return setup


async def _schema(path: Path) -> None:
    store = create_store(f"sqlite:///{path}")
    await store.open()  # the store's migrations, as a server's first start runs them
    await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=446_709)
    parser.add_argument("--templates", type=int, default=57_050)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--only", default="", help="run only the cases whose label has this")
    args = parser.parse_args()
    rng = random.Random(20261205)
    images = [f"reg.example/app{i}@sha256:{i:064x}" for i in range(1_000)]
    advisories = [f"BENCH-{i}" for i in range(50_000)]
    # Images in order, as the re-match writes them; advisories at random within an image.
    rows: list[Row] = [
        (
            occurrence_id,
            images[i * len(images) // args.findings],
            rng.choice(advisories),
            rng.randrange(args.templates),
        )
        for i, occurrence_id in enumerate(new_occurrence_ids(args.findings))
    ]
    per = -(-len(rows) // args.batches)

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "schema.db"
        asyncio.run(_schema(base))

        def run(setup: Callable[[sqlite3.Connection], None], write: Write) -> float:
            path = Path(tmp) / "run.db"
            shutil.copy(base, path)
            c = sqlite3.connect(path, isolation_level=None)
            c.execute("PRAGMA journal_mode=WAL")  # as the store opens a file
            c.execute("PRAGMA synchronous=NORMAL")
            setup(c)
            start = time.perf_counter()
            for b in range(0, len(rows), per):
                c.execute("BEGIN IMMEDIATE")
                write(c, rows[b : b + per])
                c.execute("COMMIT")
            spent = time.perf_counter() - start
            c.close()
            path.unlink()
            return spent

        def none(_: sqlite3.Connection) -> None:
            return None

        floor = run(_drop(*SECONDARY), _occurrences("{}"))
        print(
            f"{len(rows):,} findings of {len(images):,} images ({args.templates:,} templates) "
            f"in {args.batches} transactions, sqlite3 alone"
        )
        print(f"  floor: as many rows, primary key only, empty document  {floor:6.2f} s")
        cases: list[tuple[str, Callable[[sqlite3.Connection], None], Write]] = [
            ("today's rows: occurrence + image facts + 2 impact terms", none, _today),
            ("today's rows before migration 0016 (with the ID index)", _with_id_index, _today),
            (
                "today's rows, facts and terms WITHOUT ROWID",
                _without_rowid("image_facts", "impact_terms"),
                _today,
            ),
            (
                "today's rows, all three WITHOUT ROWID",
                _without_rowid("occurrences", "image_facts", "impact_terms"),
                _today,
            ),
            *[
                (f"today's rows, a {mib} MiB page cache", _cache(mib), _today)
                for mib in (16, 64, 256)
            ],
            ("occurrence rows alone", none, _occurrences(DOCUMENT)),
            *[
                (f"occurrence rows without {index}", _drop(index), _occurrences(DOCUMENT))
                for index in SECONDARY
            ],
            ("occurrence rows, every index, empty document", none, _occurrences("{}")),
            ("occurrence rows, no secondary index", _drop(*SECONDARY), _occurrences(DOCUMENT)),
            ("narrow: one row + 2 indexes, a document per template", _narrow_schema, _narrow),
        ]
        for label, setup, write in (case for case in cases if args.only in case[0]):
            spent = run(setup, write)
            print(f"  {label:<55} {spent:6.2f} s  ({spent / floor:4.1f}x floor)")


if __name__ == "__main__":
    main()
