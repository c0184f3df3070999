"""The filter language: what parses, what it means, and what is refused with a clear message."""

import pytest

from chainproof.domain.filters import (
    And,
    Compare,
    FilterColumn,
    Not,
    Or,
    Target,
    evaluate,
    parse_filter,
    render,
)
from chainproof.errors import InvalidArgument

D = "sha256:" + "cd" * 32
OCC = Target.OCCURRENCES


def row(kind: str = "ATTESTATION", resource: str = "", project: str = "p", note: str = "qa"):
    values = {
        FilterColumn.KIND: kind,
        FilterColumn.RESOURCE: resource,
        FilterColumn.NOTE_PROJECT: project,
        FilterColumn.NOTE_ID: note,
    }
    return values.__getitem__


def test_empty_filter_means_everything() -> None:
    assert parse_filter("", OCC) is None
    assert parse_filter("   ", OCC) is None
    assert evaluate(None, row())


def test_resource_url_is_canonicalised_at_parse_time() -> None:
    expr = parse_filter(f'resourceUrl="https://nginx@{D}"', OCC)
    assert expr == Compare(FilterColumn.RESOURCE, f"docker.io/library/nginx@{D}")


def test_note_name_splits_into_project_and_id() -> None:
    expr = parse_filter('noteName="projects/sec/notes/qa"', OCC)
    assert expr == And(
        (Compare(FilterColumn.NOTE_PROJECT, "sec"), Compare(FilterColumn.NOTE_ID, "qa"))
    )
    negated = parse_filter('noteName!="projects/sec/notes/qa"', OCC)
    assert isinstance(negated, Not)
    assert not evaluate(negated, row(project="sec", note="qa"))
    assert evaluate(negated, row(project="sec", note="other"))


def test_precedence_and_parentheses() -> None:
    # AND binds tighter than OR.
    expr = parse_filter('kind="BUILD" OR kind="ATTESTATION" AND noteId="x"', OCC)
    assert isinstance(expr, Or)
    assert evaluate(expr, row(kind="BUILD"))
    assert not evaluate(expr, row(kind="ATTESTATION", note="y"))
    grouped = parse_filter('(kind="BUILD" OR kind="ATTESTATION") AND noteId="x"', OCC)
    assert isinstance(grouped, And)
    assert not evaluate(grouped, row(kind="BUILD", note="y"))


def test_not_and_bare_words_and_escapes() -> None:
    expr = parse_filter('NOT kind=VULNERABILITY AND noteId="a\\"b"', OCC)
    assert evaluate(expr, row(kind="BUILD", note='a"b'))
    assert not evaluate(expr, row(kind="VULNERABILITY", note='a"b'))


def test_render_is_stable_for_equal_filters() -> None:
    a = parse_filter('kind="BUILD"  AND  resourceUrl="nginx@' + D + '"', OCC)
    b = parse_filter(f'kind=BUILD AND resource_url="docker.io/library/nginx@{D}"', OCC)
    assert render(a) == render(b)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('createTime="x"', "not supported on occurrences"),
        ('kind:"BUILD"', "are not supported"),
        ('kind>"BUILD"', "unexpected character"),
        ('kind="NOPE"', "not a Grafeas kind"),
        ('kind="BUILD" AND', "expected a field name"),
        ('(kind="BUILD"', "unclosed"),
        ('kind="BUILD" kind="IMAGE"', "expected AND, OR"),
        ('noteName="qa"', "malformed"),
        ('noteId="a\\nb"', "unknown escape"),
        ("kind=", "expected a value"),
        ("x" * 9000, "at most"),
        ("NOT " * 100 + 'kind="BUILD"', "deeper than"),
    ],
)
def test_bad_filters_are_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        parse_filter(text, OCC)


def test_resource_url_is_not_a_note_field() -> None:
    with pytest.raises(InvalidArgument, match="not supported on notes"):
        parse_filter(f'resourceUrl="nginx@{D}"', Target.NOTES)
