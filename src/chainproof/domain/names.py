"""Grafeas resource names: parsing and formatting, with errors that quote the expected form.

Owns the grammar of ``projects/{project}``, ``projects/{project}/notes/{note}``,
``projects/{project}/occurrences/{occurrence}`` and ``projects/{project}/attestors/{attestor}``
(plus the command line's ``PROJECT/ID`` shorthand for an attestor): every layer that reads one
of these names reads it here, so a name the policy parser accepts is one the API can address.
Does not know whether a resource exists.
"""

from __future__ import annotations

import re
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


def parse_note_name(name: str, *, field: str = "note name") -> NoteName:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "notes":
        raise InvalidArgument(
            f"{field} {_describe(name)} is malformed: expected the form {NOTE_FORM}"
        )
    return NoteName(validate_project_id(parts[1]), validate_resource_id(parts[3], what="note ID"))


def parse_occurrence_name(name: str) -> OccurrenceName:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "occurrences":
        raise InvalidArgument(
            f"occurrence name {_describe(name)} is malformed: expected the form {OCCURRENCE_FORM}"
        )
    return OccurrenceName(
        validate_project_id(parts[1]), validate_resource_id(parts[3], what="occurrence ID")
    )


def parse_attestor_name(name: str, *, field: str = "attestor name") -> AttestorName:
    """``projects/{project}/attestors/{id}``, as the API and policies write it."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "attestors":
        raise InvalidArgument(
            f"{field} {_describe(name)} is malformed: expected the form {ATTESTOR_FORM}"
        )
    return AttestorName(
        validate_project_id(parts[1]), validate_resource_id(parts[3], what="attestor ID")
    )


def parse_attestor_ref(text: str, *, field: str = "attestor") -> AttestorName:
    """An attestor as a person types it: ``PROJECT/ID`` or the full name (spaces trimmed)."""
    value = text.strip()
    parts = value.split("/")
    if len(parts) == 2:
        return AttestorName(
            validate_project_id(parts[0]), validate_resource_id(parts[1], what="attestor ID")
        )
    if len(parts) == 4 and parts[0] == "projects" and parts[2] == "attestors":
        return parse_attestor_name(value, field=field)
    raise InvalidArgument(
        f"{field} {_describe(text)} is malformed: expected PROJECT/ID or {ATTESTOR_FORM}"
    )


def is_attestor_name(text: str) -> bool:
    """Whether ``text`` is a well-formed attestor name (for parsers that collect problems)."""
    try:
        parse_attestor_name(text)
    except InvalidArgument:
        return False
    return True


def is_note_name(text: str) -> bool:
    """Whether ``text`` is a well-formed note name (for parsers that collect problems)."""
    try:
        parse_note_name(text)
    except InvalidArgument:
        return False
    return True
