"""Grafeas resource names: parsing and formatting, with errors that quote the expected form.

Owns the grammar of ``projects/{project}``, ``projects/{project}/notes/{note}``,
``projects/{project}/occurrences/{occurrence}`` and ``projects/{project}/attestors/{attestor}``
(plus the command line's ``PROJECT/ID`` shorthand for an attestor): every layer that reads one
of these names reads it here, so a name the policy parser accepts is one the API can address.
Does not know whether a resource exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from chainproof.errors import InvalidArgument

# Project IDs follow the Google Cloud rules loosely (letters, digits, '-', '_', '.'), because
# Grafeas clients use both short names ("image-signing") and domain-like ones.
_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Note IDs are chosen by clients; anything printable without '/' and without whitespace, so a
# name always splits into exactly one project and one note.
_RESOURCE_ID = re.compile(r"[A-Za-z0-9._~:@+-][A-Za-z0-9._~:@+=-]{0,254}")

PROJECT_FORM = "projects/{project_id}"
NOTE_FORM = "projects/{project_id}/notes/{note_id}"
OCCURRENCE_FORM = "projects/{project_id}/occurrences/{occurrence_id}"
ATTESTOR_FORM = "projects/{project_id}/attestors/{attestor_id}"


@dataclass(frozen=True, slots=True)
class NoteName:
    project: str
    note_id: str

    def __str__(self) -> str:
        return f"projects/{self.project}/notes/{self.note_id}"


@dataclass(frozen=True, slots=True)
class OccurrenceName:
    project: str
    occurrence_id: str

    def __str__(self) -> str:
        return f"projects/{self.project}/occurrences/{self.occurrence_id}"


@dataclass(frozen=True, slots=True)
class AttestorName:
    project: str
    attestor_id: str

    def __str__(self) -> str:
        return f"projects/{self.project}/attestors/{self.attestor_id}"


def _describe(value: str) -> str:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return repr(shown)


def validate_project_id(project_id: str, *, field: str = "project") -> str:
    if not _PROJECT_ID.fullmatch(project_id):
        raise InvalidArgument(
            f"{field} {_describe(project_id)} is not a valid project ID: expected 1-128 "
            "characters of letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return project_id


def validate_resource_id(resource_id: str, *, what: str) -> str:
    if "/" in resource_id:
        raise InvalidArgument(
            f"{what} {_describe(resource_id)} must not contain '/': "
            f"it is one path segment of the resource name"
        )
    if resource_id in (".", ".."):
        raise InvalidArgument(
            f"{what} {resource_id!r} is not valid: '.' and '..' are path segments that URLs "
            "resolve away (the resource could never be addressed); choose another ID"
        )
    if not _RESOURCE_ID.fullmatch(resource_id):
        raise InvalidArgument(
            f"{what} {_describe(resource_id)} is not valid: expected 1-255 characters of "
            "letters, digits and '._~:@+=-', starting with a letter, digit or one of '._~:@+-'"
        )
    return resource_id


def parse_project_name(name: str) -> str:
    """Return the project ID of ``projects/{project_id}``."""
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "projects":
        raise InvalidArgument(
            f"project name {_describe(name)} is malformed: expected the form {PROJECT_FORM}"
        )
    return validate_project_id(parts[1])


def _child_name(name: str, collection: str, form: str, field: str, what: str) -> tuple[str, str]:
    """(project, ID) of ``projects/{project}/{collection}/{id}``, each part checked."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != collection:
        raise InvalidArgument(f"{field} {_describe(name)} is malformed: expected the form {form}")
    return validate_project_id(parts[1]), validate_resource_id(parts[3], what=what)


def parse_note_name(name: str, *, field: str = "note name") -> NoteName:
    return NoteName(*_child_name(name, "notes", NOTE_FORM, field, "note ID"))


def parse_occurrence_name(name: str) -> OccurrenceName:
    return OccurrenceName(
        *_child_name(name, "occurrences", OCCURRENCE_FORM, "occurrence name", "occurrence ID")
    )


def parse_attestor_name(name: str, *, field: str = "attestor name") -> AttestorName:
    """``projects/{project}/attestors/{id}``, as the API and policies write it."""
    return AttestorName(*_child_name(name, "attestors", ATTESTOR_FORM, field, "attestor ID"))


def parse_attestor_ref(text: str, *, field: str = "attestor") -> AttestorName:
    """An attestor as a person types it: ``PROJECT/ID`` or the full name (spaces trimmed)."""
    value = text.strip()
    parts = value.split("/")
    if len(parts) == 2:
        value = f"projects/{parts[0]}/attestors/{parts[1]}"
    elif len(parts) != 4 or parts[0] != "projects" or parts[2] != "attestors":
        raise InvalidArgument(
            f"{field} {_describe(text)} is malformed: expected PROJECT/ID or {ATTESTOR_FORM}"
        )
    return parse_attestor_name(value, field=field)


def _well_formed(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except InvalidArgument:
        return False
    return True


def is_attestor_name(text: str) -> bool:
    """Whether ``text`` is a well-formed attestor name (for parsers that collect problems)."""
    return _well_formed(parse_attestor_name, text)


def is_note_name(text: str) -> bool:
    """Whether ``text`` is a well-formed note name (for parsers that collect problems)."""
    return _well_formed(parse_note_name, text)
