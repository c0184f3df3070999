"""The in-toto predicate types chainproof knows, and every name people give them: one table.

:data:`PREDICATE_TYPES` lists each kind of predicate (SLSA provenance, CycloneDX and SPDX
SBOMs, vulnerability scans, OpenVEX) with the URI chainproof writes, the other URIs and
versioned families that are of the same kind, and the short names the command line takes.
Everything that reads a predicate type reads it here:

* :func:`predicate_kind` classifies a statement's URI (ingestion, the SBOM and provenance
  checks, the scan reader);
* :data:`POLICY_ALIASES` are the upper-case names a policy may write in
  ``requiredPredicates[].predicateType``, one of which (``SBOM``) stands for two kinds;
  :func:`alias_accepts` says whether a URI satisfies one;
* :func:`predicate_type_uri` turns a ``--predicate-type`` value (a URI, a kind, a short name,
  or a policy alias naming one kind; any case, ``-`` or ``_``) into the URI to write.

A URI is of a kind when it equals one of the kind's URIs or continues one of its families
*after a path separator* (``https://cyclonedx.org/bom/v1.5``): ``https://slsa.dev/provenanceX``
is no provenance. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chainproof.errors import InvalidArgument

__all__ = [
    "CYCLONEDX_BOM",
    "OPENVEX",
    "POLICY_ALIASES",
    "PREDICATE_TYPES",
    "SLSA_PROVENANCE_V02",
    "SLSA_PROVENANCE_V1",
    "SPDX_DOCUMENT",
    "VULN_SCAN_COSIGN",
    "VULN_SCAN_INTOTO",
    "PredicateType",
    "alias_accepts",
    "cli_names",
    "predicate_kind",
    "predicate_type_uri",
]

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
SLSA_PROVENANCE_V02 = "https://slsa.dev/provenance/v0.2"
CYCLONEDX_BOM = "https://cyclonedx.org/bom"
SPDX_DOCUMENT = "https://spdx.dev/Document"
VULN_SCAN_COSIGN = "https://cosign.sigstore.dev/attestation/vuln/v1"
VULN_SCAN_INTOTO = "https://in-toto.io/attestation/vulns"
OPENVEX = "https://openvex.dev/ns"


@dataclass(frozen=True, slots=True)
class PredicateType:
    """One kind of predicate: the URI chainproof writes and what else counts as this kind."""

    kind: str
    uri: str
    #: Other exact URIs of this kind.
    also: tuple[str, ...] = ()
    #: Versioned families, each ending in "/": a URI continuing one is of this kind.
    families: tuple[str, ...] = ()
    #: Command-line names besides ``kind``, each with the URI it writes.
    names: Mapping[str, str] = field(default_factory=dict)

    def matches(self, uri: str) -> bool:
        return uri == self.uri or uri in self.also or uri.startswith(self.families)


PREDICATE_TYPES: tuple[PredicateType, ...] = (
    PredicateType(
        "slsa-provenance",
        SLSA_PROVENANCE_V1,
        also=(SLSA_PROVENANCE_V02,),
        families=("https://slsa.dev/provenance/",),
        names={
            "slsa": SLSA_PROVENANCE_V1,
            "slsa-provenance-v1": SLSA_PROVENANCE_V1,
            "slsa-provenance-v0.2": SLSA_PROVENANCE_V02,
        },
    ),
    PredicateType("cyclonedx", CYCLONEDX_BOM, families=(CYCLONEDX_BOM + "/",)),
    PredicateType("spdx", SPDX_DOCUMENT, families=(SPDX_DOCUMENT + "/",)),
    PredicateType(
        "vulnerability-scan",
        VULN_SCAN_COSIGN,
        also=(VULN_SCAN_INTOTO,),
        families=("https://cosign.sigstore.dev/attestation/vuln/", VULN_SCAN_INTOTO + "/"),
        names={"vuln": VULN_SCAN_COSIGN},
    ),
    PredicateType("openvex", OPENVEX, families=(OPENVEX + "/",), names={"vex": OPENVEX}),
)

_BY_KIND = {t.kind: t for t in PREDICATE_TYPES}

#: The names a policy may write instead of a URI, each with the kinds it accepts.
POLICY_ALIASES: Mapping[str, tuple[str, ...]] = {
    "SLSA_PROVENANCE": ("slsa-provenance",),
    "CYCLONEDX_SBOM": ("cyclonedx",),
    "SPDX_SBOM": ("spdx",),
    "SBOM": ("cyclonedx", "spdx"),
    "VULNERABILITY_SCAN": ("vulnerability-scan",),
}


def predicate_kind(predicate_type: str) -> str | None:
    """``slsa-provenance``, ``cyclonedx``, ``spdx``, ``vulnerability-scan``, ``openvex`` or None."""
    for t in PREDICATE_TYPES:
        if t.matches(predicate_type):
            return t.kind
    return None


def alias_accepts(alias: str, predicate_type: str) -> bool:
    """Whether a statement of ``predicate_type`` satisfies the policy alias ``alias``."""
    return predicate_kind(predicate_type) in POLICY_ALIASES[alias]


def _normalised(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def cli_names() -> dict[str, str]:
    """Every ``--predicate-type`` name with the URI it writes: kinds, short names, and the
    policy aliases that name one kind (``SLSA_PROVENANCE`` reads as ``slsa-provenance``)."""
    found: dict[str, str] = {}
    for t in PREDICATE_TYPES:
        found[t.kind] = t.uri
        found.update(t.names)
    for alias, kinds in POLICY_ALIASES.items():
        if len(kinds) == 1:
            found.setdefault(_normalised(alias), _BY_KIND[kinds[0]].uri)
    return found


def predicate_type_uri(text: str, *, option: str = "--predicate-type") -> str:
    """The URI to write for ``text``: a URI as it is, or a name of :func:`cli_names` (any case,
    ``-`` or ``_``)."""
    value = text.strip()
    if "://" in value:
        return value
    names = cli_names()
    uri = names.get(_normalised(value))
    if uri is None:
        raise InvalidArgument(
            f"{option} {text!r} is neither a URI nor a known name: use a URI such as "
            f"{SLSA_PROVENANCE_V1} or one of " + ", ".join(sorted(names))
        )
    return uri
