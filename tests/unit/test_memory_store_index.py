"""The memory store's occurrence indexes answer exactly as a scan of every occurrence would,
through inserts, replacements that move an occurrence to another resource, deletes and
sessions that fail and roll back."""

from __future__ import annotations

import random

from chainproof.domain.filters import And, Compare, FilterColumn, Or
from chainproof.store.memory import MemoryStore
from contract.store_samples import occurrence_record

PROJECTS = ("p1", "p2")
RESOURCES = [f"registry.example/app{i}@sha256:{i:064x}" for i in range(6)]
NOTES = [("osv", "a"), ("osv", "b"), ("other", "a")]


class Rollback(Exception):
    pass


def brute(store: MemoryStore, project: str, where: object) -> list[str]:
    from chainproof.domain.filters import evaluate

    state = store._state
    return sorted(
        r.occurrence_id
        for (p, _), r in state.occurrences.items()
        if p == project and evaluate(where, r.column)  # type: ignore[arg-type]
    )


async def test_indexed_lists_agree_with_a_full_scan() -> None:
    rng = random.Random(7)
    store = MemoryStore()
    ids: list[tuple[str, str]] = []
    for step in range(300):
        fail = rng.random() < 0.2
        try:
            async with store.session() as s:
                for _ in range(rng.randint(1, 5)):
                    action = rng.random()
                    if action < 0.5 or not ids:
                        key = (rng.choice(PROJECTS), f"o{step:04d}-{len(ids):04d}")
                        record = occurrence_record(
                            key[0], key[1], resource=rng.choice(RESOURCES), note=rng.choice(NOTES)
                        )
                        await s.occurrences.insert([record])
                        ids.append(key)
                    elif action < 0.8:
                        project, occurrence_id = rng.choice(ids)
                        moved = occurrence_record(
                            project,
                            occurrence_id,
                            resource=rng.choice(RESOURCES),
                            note=rng.choice(NOTES),
                        )
                        await s.occurrences.replace(moved)
                    else:
                        await s.occurrences.delete(*rng.choice(ids))
                if fail:
                    raise Rollback
        except Rollback:
            pass
    filters = [
        None,
        Compare(FilterColumn.RESOURCE, RESOURCES[0]),
        Or(tuple(Compare(FilterColumn.RESOURCE, r) for r in RESOURCES[1:4])),
        And(
            (
                Compare(FilterColumn.RESOURCE, RESOURCES[2]),
                Compare(FilterColumn.NOTE_PROJECT, "osv"),
            )
        ),
        And(
            (
                Or((Compare(FilterColumn.RESOURCE, RESOURCES[4]),)),
                Compare(FilterColumn.KIND, "ATTESTATION"),
            )
        ),
        Compare(FilterColumn.RESOURCE, RESOURCES[5], negated=True),
    ]
    async with store.session(readonly=True) as s:
        for project in PROJECTS:
            for where in filters:
                listed = await s.occurrences.page(project, where, None, 10_000)
                assert [r.occurrence_id for r in listed] == brute(store, project, where), where
            for note in NOTES:
                listed = await s.occurrences.page_of_note(*note, None, None, 10_000)
                expected = sorted(
                    r.occurrence_id
                    for r in store._state.occurrences.values()
                    if (r.note_project, r.note_id) == note
                )
                assert [r.occurrence_id for r in listed] == expected
    # the indexes hold nothing the table does not
    state = store._state
    assert sum(len(v) for v in state.by_project.values()) == len(state.occurrences)
    assert sum(len(v) for v in state.by_resource.values()) == len(state.occurrences)
