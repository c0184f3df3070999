"""The rules every repository keeps the same way on every adapter, written once.

The repository base classes (store/scribe.py, store/judge.py, store/access.py) apply these
before they hand a call to an adapter, so memory, SQLite and PostgreSQL cannot disagree about
them and an adapter never sees a call they settle:

* **Distinct keys in a batch.** A batch that names one key twice is refused before anything is
  written. Notes report the repeats as taken IDs (the service answers ALREADY_EXISTS); kinds
  whose IDs the server makes (occurrences, decisions) raise :class:`DuplicateKey`, because a
  repeat there is a bug in the caller, not something a user did.
* **Empty work is no work.** An empty batch writes nothing, an empty key list finds nothing, a
  page of ``limit <= 0`` is empty; none of them reaches the database.

Pure: values in, answers out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class DuplicateKey(RuntimeError):
    """A write named a key that must be new: twice in one batch, or one already stored.

    A RuntimeError on purpose: the server makes these IDs, so meeting one twice is a bug and
    must surface as an internal error, never be mistaken for a user's mistake.
    """


def repeated_in_batch(what: str, key: str) -> DuplicateKey:
    return DuplicateKey(f"{what} {key} appears twice in one batch: IDs in a batch must be unique")


def already_stored(what: str, key: str) -> DuplicateKey:
    return DuplicateKey(f"{what} {key} exists: IDs must be new")


def repeats(items: Iterable[T], key: Callable[[T], K]) -> list[T]:
    """The items whose key an earlier item of ``items`` had already, in order."""
    seen: set[K] = set()
    again: list[T] = []
    for item in items:
        k = key(item)
        if k in seen:
            again.append(item)
        seen.add(k)
    return again


def require_distinct(
    items: Sequence[T], key: Callable[[T], Hashable], what: str, name: Callable[[T], str]
) -> None:
    """Raise DuplicateKey naming (by ``name``) the first item whose key ``items`` repeat."""
    again = repeats(items, key)
    if again:
        raise repeated_in_batch(what, name(again[0]))


def distinct(keys: Iterable[K]) -> list[K]:
    """``keys`` without repeats, first appearance kept (what a batch lookup asks for)."""
    return list(dict.fromkeys(keys))
