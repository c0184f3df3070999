"""A small reader for policy documents that collects every violation with its path.

Policy documents arrive as plain dicts (JSON or YAML loaded by the caller). Rather than stop at
the first mistake, each parser walks the whole document through a :class:`FieldReader`, which
records ``path: what was found, what was expected`` lines and lets the parser carry on with a
placeholder value. At the end :meth:`Problems.raise_if_any` raises one
:class:`~chainproof.errors.InvalidArgument` whose ``details`` list every violation, so an author
fixes a file in one round instead of one error per attempt.

This module knows nothing about Binary Authorization or Kritis; it only reads shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, TypeVar

from chainproof.errors import InvalidArgument

E = TypeVar("E", bound=Enum)


class Problems:
    """The violations found so far while reading one document."""

    def __init__(self, document: str) -> None:
        self.document = document
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)

    def raise_if_any(self) -> None:
        if self.items:
            count = len(self.items)
            noun = "problem" if count == 1 else "problems"
            raise InvalidArgument(
                f"invalid {self.document}: {count} {noun}", details=list(self.items)
            )


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def index(path: str, i: int | str) -> str:
    return f"{path}[{i}]"


def describe(value: object) -> str:
    """How a wrong value is quoted back: short, and typed when it is not a string."""
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


class FieldReader:
    """Reads the fields of one JSON object at ``path``, reporting problems as it goes."""

    def __init__(self, problems: Problems, path: str, data: object, known: Iterable[str]) -> None:
        self.problems = problems
        self.path = path
        self.ok = isinstance(data, Mapping)
        self.data: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
        if not self.ok:
            problems.add(path or "document", f"expected an object, got {describe(data)}")
            return
        known_set = set(known)
        for key in self.data:
            if key not in known_set:
                # Typos such as "requireAttestationBy" must not silently weaken a policy.
                problems.add(
                    join(path, str(key)),
                    f"unknown field; expected one of {', '.join(sorted(known_set))}",
                )

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def at(self, key: str) -> str:
        return join(self.path, key)

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def string(self, key: str, *, required: bool = False, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problems.add(self.at(key), "is required")
            return default
        if not isinstance(value, str):
            self.problems.add(self.at(key), f"expected a string, got {describe(value)}")
            return default
        if required and not value.strip():
            self.problems.add(self.at(key), "must not be empty")
        return value

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problems.add(self.at(key), f"expected true or false, got {describe(value)}")
            return default
        return value

    def number(self, key: str, *, required: bool = False) -> float | None:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problems.add(self.at(key), "is required")
            return None
        # bool is an int in Python; "true hours" is never meant.
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.add(self.at(key), f"expected a number, got {describe(value)}")
            return None
        return float(value)

    def enum(self, key: str, kind: type[E], *, required: bool = False, default: E) -> E:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problems.add(
                    self.at(key), f"is required; expected one of {enum_choices(kind)}"
                )
            return default
        return read_enum(self.problems, self.at(key), value, kind, default)

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        return read_string_list(self.problems, self.at(key), value)

    def object_list(self, key: str) -> Sequence[tuple[str, object]]:
        """Items of a list of objects with their paths; the items are checked by the caller."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problems.add(self.at(key), f"expected a list, got {describe(value)}")
            return ()
        return [(index(self.at(key), i), item) for i, item in enumerate(value)]

    def object_map(self, key: str) -> Sequence[tuple[str, str, object]]:
        """``(key, path, value)`` for each entry of a map-valued field."""
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            self.problems.add(self.at(key), f"expected an object (a map), got {describe(value)}")
            return ()
        return [(str(k), index(self.at(key), str(k)), v) for k, v in value.items()]


def enum_choices(kind: type[Enum]) -> str:
    return ", ".join(str(member.value) for member in kind)


def read_enum(problems: Problems, path: str, value: object, kind: type[E], default: E) -> E:
    if isinstance(value, str):
        for member in kind:
            if member.value == value:
                return member
    problems.add(path, f"{describe(value)} is not one of {enum_choices(kind)}")
    return default


def read_string_list(problems: Problems, path: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        problems.add(path, f"expected a list of strings, got {describe(value)}")
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item.strip():
            out.append(item)
        else:
            problems.add(index(path, i), f"expected a non-empty string, got {describe(item)}")
    return tuple(out)
