"""The quick look for undeclared enum numbers (ADR 0086) agrees with the field-by-field walk
that words the problems: on messages with enums set anywhere, declared or not."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chainproof.domain.bounds import undefined_enums
from chainproof.domain.messages import NotePB, OccurrencePB

#: (setter, is the number declared) — enums at every depth an occurrence or note has them.
_SETTERS: list[Any] = [
    lambda o, n: setattr(o, "kind", n),
    lambda o, n: setattr(o.vulnerability, "severity", n),
    lambda o, n: setattr(o.vulnerability, "effective_severity", n),
    lambda o, n: setattr(o.vulnerability.package_issue.add().affected_version, "kind", n),
    lambda o, n: setattr(o.vulnerability.package_issue.add().fixed_version, "kind", n),
    lambda o, n: setattr(o.vulnerability.vex_assessment, "state", n),
    lambda o, n: setattr(o.discovery, "analysis_status", n),
    lambda o, n: setattr(o.build.provenance, "id", "x") or setattr(o, "kind", n),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_SETTERS) - 1), st.integers(0, 40)), max_size=6))
def test_quick_look_and_full_walk_agree_on_occurrences(sets: list[tuple[int, int]]) -> None:
    occ = OccurrencePB()
    for which, number in sets:
        try:
            _SETTERS[which](occ, number)
        except ValueError:  # a oneof already holds another kind of details
            continue
    quick = undefined_enums(occ)
    walked = undefined_enums(occ, path="occurrence")  # a path skips the quick look
    assert bool(quick) == bool(walked)
    assert [p.removeprefix("occurrence.") for p in walked] == quick


def test_an_undeclared_number_deep_in_a_note_is_named() -> None:
    note = NotePB()
    note.vulnerability.details.add().affected_version_start.kind = 55
    note.vulnerability.details.add().affected_version_start.kind = 1
    assert undefined_enums(note) == [
        "vulnerability.details[0].affectedVersionStart.kind is 55, which is not a value of "
        "VersionKind: expected one of VERSION_KIND_UNSPECIFIED, NORMAL, MINIMUM, MAXIMUM"
    ]


def test_declared_numbers_everywhere_are_no_problem() -> None:
    occ = OccurrencePB()
    occ.kind = 1
    occ.vulnerability.severity = 4
    occ.vulnerability.package_issue.add().affected_version.kind = 1
    assert undefined_enums(occ) == []
