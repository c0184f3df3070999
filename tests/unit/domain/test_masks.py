import pytest

from chainproof.domain.masks import apply_mask, parse_mask, split_mask_string
from chainproof.domain.messages import NotePB, note_from_json
from chainproof.errors import InvalidArgument


def test_both_spellings_are_accepted() -> None:
    paths = parse_mask(
        split_mask_string("shortDescription,long_description,attestation.hint"),
        NotePB.DESCRIPTOR,
        what="a Note",
    )
    assert paths == ["short_description", "long_description", "attestation.hint"]


def test_unknown_paths_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="'nope' names no field"):
        parse_mask(["nope"], NotePB.DESCRIPTOR, what="a Note")
    with pytest.raises(InvalidArgument, match="names no field"):
        parse_mask(["attestation.hint.nope"], NotePB.DESCRIPTOR, what="a Note")


def test_only_masked_fields_change() -> None:
    target = note_from_json({"shortDescription": "a", "longDescription": "b", "attestation": {}})
    source = note_from_json({"shortDescription": "new", "longDescription": "ignored"})
    apply_mask(target, source, ["short_description"])
    assert (target.short_description, target.long_description) == ("new", "b")
