"""One table of predicate types (attest/predicates.py) for ingestion, policy and the CLI."""

from __future__ import annotations

import pytest

from chainproof.attest.predicates import (
    POLICY_ALIASES,
    PREDICATE_TYPES,
    SLSA_PROVENANCE_V02,
    SLSA_PROVENANCE_V1,
    VULN_SCAN_COSIGN,
    alias_accepts,
    cli_names,
    predicate_kind,
    predicate_type_uri,
)
from chainproof.attest.vuln_scan import is_vuln_scan
from chainproof.errors import InvalidArgument
from chainproof.policy.checks.predicates import PredicateRequirement


def test_the_command_line_names_are_those_it_always_took() -> None:
    assert sorted(cli_names()) == [
        "cyclonedx",
        "cyclonedx-sbom",
        "openvex",
        "slsa",
        "slsa-provenance",
        "slsa-provenance-v0.2",
        "slsa-provenance-v1",
        "spdx",
        "spdx-sbom",
        "vex",
        "vuln",
        "vulnerability-scan",
    ]


@pytest.mark.parametrize("name", sorted(cli_names()))
def test_every_name_writes_a_uri_of_its_own_kind(name: str) -> None:
    uri = predicate_type_uri(name)
    kinds = {t.kind for t in PREDICATE_TYPES if name == t.kind or name in t.names}
    assert predicate_kind(uri) is not None
    if kinds:
        assert kinds == {predicate_kind(uri)}


@pytest.mark.parametrize("alias", [a for a, kinds in POLICY_ALIASES.items() if len(kinds) == 1])
def test_what_the_cli_signs_for_a_policy_alias_satisfies_that_alias(alias: str) -> None:
    # The policy spelling works on the command line, and the statement it makes is accepted.
    uri = predicate_type_uri(alias)
    assert alias_accepts(alias, uri)
    assert PredicateRequirement(alias, ()).accepts(uri)


def test_a_policy_alias_for_two_kinds_is_no_command_line_name() -> None:
    with pytest.raises(InvalidArgument, match="is neither a URI nor a known name"):
        predicate_type_uri("SBOM")
    assert predicate_type_uri(" Slsa_Provenance_v0.2 ") == SLSA_PROVENANCE_V02
    assert predicate_type_uri("https://example.com/custom/v1") == "https://example.com/custom/v1"


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("https://cyclonedx.org/bom/v1.5", "cyclonedx"),
        ("https://cyclonedx.org/bomb", None),
        ("https://spdx.dev/Documents", None),
        ("https://cosign.sigstore.dev/attestation/vuln/v2", "vulnerability-scan"),
        ("https://in-toto.io/attestation/vulns", "vulnerability-scan"),
        ("https://in-toto.io/attestation/vulns/v0.1", "vulnerability-scan"),
        ("https://in-toto.io/attestation/vulnsX", None),
        ("https://slsa.dev/provenance/v0.1", "slsa-provenance"),
    ],
)
def test_a_family_continues_only_after_a_separator(uri: str, kind: str | None) -> None:
    assert predicate_kind(uri) == kind
    # The scan reader and the policy alias read the same table.
    assert is_vuln_scan(uri) is (kind == "vulnerability-scan")
    assert alias_accepts("VULNERABILITY_SCAN", uri) is (kind == "vulnerability-scan")
    assert alias_accepts("SBOM", uri) is (kind in ("cyclonedx", "spdx"))


def test_a_uri_requirement_accepts_only_itself() -> None:
    required = PredicateRequirement(SLSA_PROVENANCE_V1, ())
    assert required.accepts(SLSA_PROVENANCE_V1)
    assert not required.accepts(SLSA_PROVENANCE_V02)
    assert not required.accepts(None)
    assert PredicateRequirement("VULNERABILITY_SCAN", ()).accepts(VULN_SCAN_COSIGN)
