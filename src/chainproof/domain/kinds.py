"""Grafeas kinds: deriving ``kind`` from a note's or occurrence's details, and checking the
required fields of each kind.

Validation collects every violation instead of stopping at the first, so that a client learns
everything wrong with a request in one InvalidArgument. This module reads messages only; it
does not know what is stored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chainproof.domain.bounds import check_indexed_text, undefined_enums
from chainproof.errors import InvalidArgument

#: Details field name (the protobuf oneof member) → kind name.
DETAILS_TO_KIND: dict[str, str] = {
    "vulnerability": "VULNERABILITY",
    "build": "BUILD",
    "image": "IMAGE",
    "package": "PACKAGE",
    "deployment": "DEPLOYMENT",
    "discovery": "DISCOVERY",
    "attestation": "ATTESTATION",
    "upgrade": "UPGRADE",
    "compliance": "COMPLIANCE",
    "dsse_attestation": "DSSE_ATTESTATION",
    "vulnerability_assessment": "VULNERABILITY_ASSESSMENT",
    "sbom_reference": "SBOM_REFERENCE",
    "secret": "SECRET",
}
KIND_NAMES: frozenset[str] = frozenset(DETAILS_TO_KIND.values())

#: Occurrence kinds that may attach to a note of another kind. A DSSE attestation is made by an
#: attestor, whose note is an ATTESTATION note (as in Binary Authorization).
_COMPATIBLE_NOTE_KINDS: dict[str, frozenset[str]] = {
    "DSSE_ATTESTATION": frozenset({"DSSE_ATTESTATION", "ATTESTATION"}),
}

Check = Callable[[Any, str, list[str]], None]

#: Signatures (or JWTs) one attestation may carry. Real attestations carry one, sometimes a
#: few (key rotation, co-signing); each extra one costs the judge a verification, so a flood
#: of them is refused when written rather than paid for at every admission review.
MAX_SIGNATURES = 32

#: What an OpenPGP message that carries its own content starts with (``gpg --sign --armor``,
#: ``gpg --clearsign``); a binary OpenPGP packet starts with a byte whose high bit is set.
_PGP_CONTENT_HEADERS = (b"-----BEGIN PGP MESSAGE-----", b"-----BEGIN PGP SIGNED MESSAGE-----")


#: ``kind`` number → name, per message class (read once from its descriptor).
_KIND_NAMES: dict[Any, dict[int, str]] = {}


def _kind_names(cls: Any) -> dict[int, str]:
    names = _KIND_NAMES.get(cls)
    if names is None:
        enum = cls.DESCRIPTOR.fields_by_name["kind"].enum_type
        names = {number: str(v.name) for number, v in enum.values_by_number.items()}
        _KIND_NAMES[cls] = names
    return names


def _kind_name(msg: Any) -> str:
    value = _kind_names(type(msg)).get(msg.kind)
    if value is None:
        raise InvalidArgument(
            f"kind {msg.kind} is not a Grafeas kind: omit kind (it is derived from the "
            "details) or give one of " + ", ".join(sorted(KIND_NAMES))
        )
    return value


def derive_kind(msg: Any, *, oneof: str, what: str) -> str:
    """The kind a message's details imply; InvalidArgument if absent or contradicting ``kind``."""
    details = msg.WhichOneof(oneof)
    if details is None:
        raise InvalidArgument(
            f"{what} has no details: expected exactly one of "
            + ", ".join(_camel(f) for f in DETAILS_TO_KIND if f in msg.DESCRIPTOR.fields_by_name)
        )
    kind = DETAILS_TO_KIND[details]
    given = _kind_name(msg)
    if given not in ("NOTE_KIND_UNSPECIFIED", kind):
        raise InvalidArgument(
            f"{what} says kind {given} but carries {_camel(details)} details, which are kind "
            f"{kind}: omit kind (it is derived) or make them agree"
        )
    return kind


def note_kind_accepts(note_kind: str, occurrence_kind: str) -> bool:
    return note_kind in _COMPATIBLE_NOTE_KINDS.get(occurrence_kind, frozenset({occurrence_kind}))


@functools.cache
def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


# --- required fields per kind -------------------------------------------------------------


def _need(value: Any, path: str, problems: list[str], hint: str = "") -> None:
    if not value:
        problems.append(f"{path} is required{': ' + hint if hint else ''}")


def _hint(details: Any, path: str, problems: list[str]) -> None:
    if details.HasField("hint"):
        _need(details.hint.human_readable_name, f"{path}.hint.humanReadableName", problems)


def _note_vulnerability(d: Any, p: str, problems: list[str]) -> None:
    for i, detail in enumerate(d.details):
        _need(detail.affected_cpe_uri, f"{p}.details[{i}].affectedCpeUri", problems)
        _need(detail.affected_package, f"{p}.details[{i}].affectedPackage", problems)


def _note_build(d: Any, p: str, problems: list[str]) -> None:
    _need(d.builder_version, f"{p}.builderVersion", problems)


def _fingerprint(fp: Any, p: str, problems: list[str]) -> None:
    _need(fp.v1_name, f"{p}.v1Name", problems)
    _need(list(fp.v2_blob), f"{p}.v2Blob", problems, "the ordered list of layer blob digests")


def _note_image(d: Any, p: str, problems: list[str]) -> None:
    _need(d.resource_url, f"{p}.resourceUrl", problems)
    _need(d.HasField("fingerprint"), f"{p}.fingerprint", problems)
    if d.HasField("fingerprint"):
        _fingerprint(d.fingerprint, f"{p}.fingerprint", problems)


def _note_package(d: Any, p: str, problems: list[str]) -> None:
    _need(d.name, f"{p}.name", problems)


def _note_deployment(d: Any, p: str, problems: list[str]) -> None:
    _need(list(d.resource_uri), f"{p}.resourceUri", problems, "the resources that are deployed")


def _note_discovery(d: Any, p: str, problems: list[str]) -> None:
    _need(d.analysis_kind, f"{p}.analysisKind", problems, "the kind of analysis this discovers")


def _note_upgrade(d: Any, p: str, problems: list[str]) -> None:
    if not d.HasField("windows_update"):
        _need(d.package, f"{p}.package", problems, "or windowsUpdate for Windows")
        _need(d.HasField("version"), f"{p}.version", problems, "or windowsUpdate for Windows")


def _nothing(d: Any, p: str, problems: list[str]) -> None:
    return None


_NOTE_CHECKS: dict[str, Check] = {
    "vulnerability": _note_vulnerability,
    "build": _note_build,
    "image": _note_image,
    "package": _note_package,
    "deployment": _note_deployment,
    "discovery": _note_discovery,
    "attestation": _hint,
    "upgrade": _note_upgrade,
    "compliance": _nothing,
    "dsse_attestation": _hint,
    "vulnerability_assessment": _nothing,
    "sbom_reference": _nothing,
    "secret": _nothing,
}


def _occ_vulnerability(d: Any, p: str, problems: list[str]) -> None:
    _need(list(d.package_issue), f"{p}.packageIssue", problems, "at least one affected package")
    for i, issue in enumerate(d.package_issue):
        _need(issue.affected_cpe_uri, f"{p}.packageIssue[{i}].affectedCpeUri", problems)
        _need(issue.affected_package, f"{p}.packageIssue[{i}].affectedPackage", problems)


def _occ_build(d: Any, p: str, problems: list[str]) -> None:
    if d.HasField("provenance"):
        _need(d.provenance.id, f"{p}.provenance.id", problems)


def _occ_image(d: Any, p: str, problems: list[str]) -> None:
    _need(d.HasField("fingerprint"), f"{p}.fingerprint", problems)
    if d.HasField("fingerprint"):
        _fingerprint(d.fingerprint, f"{p}.fingerprint", problems)


def _occ_package(d: Any, p: str, problems: list[str]) -> None:
    _need(d.name, f"{p}.name", problems)


def _occ_deployment(d: Any, p: str, problems: list[str]) -> None:
    _need(d.HasField("deploy_time"), f"{p}.deployTime", problems)


def _carries_content(signature: bytes) -> bool:
    head = signature.lstrip()
    return head.startswith(_PGP_CONTENT_HEADERS) or bool(head and head[0] & 0x80)


def _bounded(items: Any, path: str, problems: list[str]) -> None:
    if len(items) > MAX_SIGNATURES:
        problems.append(
            f"{path} has {len(items)} entries: an attestation carries at most "
            f"{MAX_SIGNATURES} signatures"
        )


def _occ_attestation(d: Any, p: str, problems: list[str]) -> None:
    _bounded(d.signatures, f"{p}.signatures", problems)
    _bounded(d.jwts, f"{p}.jwts", problems)
    if not d.jwts:
        # An OpenPGP message (inline-signed or clearsigned) carries what it signs, so the
        # payload beside it is optional there (docs/attestations.md); anything else needs it.
        if not d.serialized_payload and not (
            d.signatures and all(_carries_content(s.signature) for s in d.signatures)
        ):
            _need(
                d.serialized_payload,
                f"{p}.serializedPayload",
                problems,
                "the signed bytes (it may be left out only when every signature is an OpenPGP "
                "message that carries its content: gpg --sign or gpg --clearsign)",
            )
        _need(list(d.signatures), f"{p}.signatures", problems, "at least one signature")
    for i, sig in enumerate(d.signatures):
        _need(sig.signature, f"{p}.signatures[{i}].signature", problems)
        _need(sig.public_key_id, f"{p}.signatures[{i}].publicKeyId", problems)


def _occ_dsse(d: Any, p: str, problems: list[str]) -> None:
    _need(d.HasField("envelope"), f"{p}.envelope", problems, "the DSSE envelope")
    if d.HasField("envelope"):
        env = d.envelope
        _need(env.payload, f"{p}.envelope.payload", problems)
        _need(env.payload_type, f"{p}.envelope.payloadType", problems)
        _need(list(env.signatures), f"{p}.envelope.signatures", problems, "at least one")
        _bounded(env.signatures, f"{p}.envelope.signatures", problems)
        for i, sig in enumerate(env.signatures):
            _need(sig.sig, f"{p}.envelope.signatures[{i}].sig", problems)


_OCCURRENCE_CHECKS: dict[str, Check] = {
    "vulnerability": _occ_vulnerability,
    "build": _occ_build,
    "image": _occ_image,
    "package": _occ_package,
    "deployment": _occ_deployment,
    "discovery": _nothing,
    "attestation": _occ_attestation,
    "upgrade": _nothing,
    "compliance": _nothing,
    "dsse_attestation": _occ_dsse,
    "sbom_reference": _nothing,
    "secret": _nothing,
}


def note_problems(note: Any, *, enums: bool = True) -> list[str]:
    """Violations of the required fields of a note's kind (empty when valid).

    ``enums=False`` skips the walk for undefined enum numbers, for a message parsed by
    :func:`chainproof.domain.messages.strict_from_json`, which cannot hold one."""
    problems: list[str] = undefined_enums(note) if enums else []
    details = note.WhichOneof("type")
    if details is None:
        return problems
    _NOTE_CHECKS[details](getattr(note, details), _camel(details), problems)
    return problems


def occurrence_problems(occ: Any, *, enums: bool = True, common: bool = True) -> list[str]:
    """Violations of an occurrence's common and kind-specific required fields
    (``enums=False``: see :func:`note_problems`; ``common=False`` leaves out
    :func:`common_occurrence_problems`, for a caller that checks each distinct resource URI
    and note name of a batch once)."""
    problems: list[str] = undefined_enums(occ) if enums else []
    if common:
        problems += common_occurrence_problems(occ)
    if occ.HasField("envelope"):
        _bounded(occ.envelope.signatures, "envelope.signatures", problems)
    details = occ.WhichOneof("details")
    if details is not None:
        _OCCURRENCE_CHECKS[details](getattr(occ, details), _camel(details), problems)
    return problems


def common_occurrence_problems(occ: Any) -> list[str]:
    """Violations of the resource URI and note name every occurrence needs."""
    problems: list[str] = []
    _need(occ.resource_uri.strip(), "resourceUri", problems, "the artifact this is about")
    _need(occ.note_name, "noteName", problems, "projects/{project}/notes/{note}")
    for field, value in (("resourceUri", occ.resource_uri), ("noteName", occ.note_name)):
        try:
            check_indexed_text(value, field)
        except InvalidArgument as exc:
            problems.append(exc.message)
    return problems


def finding_aliases(extra_details: str) -> tuple[str, ...]:
    """The other IDs a VULNERABILITY occurrence gives its vulnerability: ``aliases=A,B`` in
    ``extraDetails`` (``key=value;…``, as ingestion and the scanner write it)."""
    for item in extra_details.split(";"):
        key, _, value = item.partition("=")
        if key.strip() == "aliases":
            return tuple(a.strip() for a in value.split(",") if a.strip())
    return ()
