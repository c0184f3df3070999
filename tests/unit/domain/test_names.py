import pytest

from chainproof.domain.names import parse_note_name, parse_occurrence_name, parse_project_name
from chainproof.errors import InvalidArgument


def test_valid_names() -> None:
    assert parse_project_name("projects/image-signing") == "image-signing"
    n = parse_note_name("projects/p/notes/qa-1.x")
    assert (n.project, n.note_id, str(n)) == ("p", "qa-1.x", "projects/p/notes/qa-1.x")
    o = parse_occurrence_name("projects/p/occurrences/0f7e")
    assert (o.project, o.occurrence_id) == ("p", "0f7e")


@pytest.mark.parametrize(
    ("func", "bad", "form"),
    [
        (parse_project_name, "project/p", "projects/{project_id}"),
        (parse_note_name, "projects/p/occurrences/x", "projects/{project_id}/notes/{note_id}"),
        (parse_note_name, "projects/p/notes/a/b", "projects/{project_id}/notes/{note_id}"),
        (parse_occurrence_name, "projects//occurrences/x", "valid project ID"),
    ],
)
def test_malformed_names_quote_the_expected_form(func, bad: str, form: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        func(bad)
    assert form in str(info.value)


@pytest.mark.parametrize("note_id", ["a b", "é", "x\u202eevil", "", "a\x00"])
def test_odd_note_ids_are_refused(note_id: str) -> None:
    with pytest.raises(InvalidArgument, match="note ID"):
        parse_note_name(f"projects/p/notes/{note_id}")
