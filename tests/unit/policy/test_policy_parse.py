"""Parsing Binary Authorization policies and attestors: shapes, paths of errors, round trips."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from chainproof.errors import InvalidArgument
from chainproof.policy import (
    EvaluationMode,
    GlobalPolicyEvaluationMode,
    parse_attestor,
    parse_policy,
)
from chainproof.policy.checks.freshness import Freshness

GCLOUD_EXPORT = """
admissionWhitelistPatterns:
- namePattern: gcr.io/google_containers/*
- namePattern: k8s.gcr.io/**
clusterAdmissionRules:
  us-central1-a.prod-cluster:
    enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
    evaluationMode: REQUIRE_ATTESTATION
    requireAttestationsBy:
    - projects/example-project/attestors/qa
defaultAdmissionRule:
  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
  evaluationMode: ALWAYS_DENY
etag: '"Aa1bB2cC3="'
globalPolicyEvaluationMode: ENABLE
kubernetesNamespaceAdmissionRules:
  staging:
    enforcementMode: DRYRUN_AUDIT_LOG_ONLY
    evaluationMode: ALWAYS_ALLOW
kubernetesServiceAccountAdmissionRules:
  prod:deployer:
    enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
    evaluationMode: REQUIRE_ATTESTATION
    requireAttestationsBy:
    - projects/example-project/attestors/qa
    chainproofChecks:
      vulnerabilities:
        maximumFixableSeverity: MEDIUM
        maximumUnfixableSeverity: HIGH
      freshness:
        maximumScanAgeHours: 24
istioServiceIdentityAdmissionRules:
  spiffe://example.com/ns/test-ns/sa/default:
    enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG
    evaluationMode: ALWAYS_ALLOW
name: projects/example-project/policy
updateTime: '2024-01-01T00:00:00.000000Z'
"""


def details(doc: Any) -> tuple[str, ...]:
    with pytest.raises(InvalidArgument) as info:
        parse_policy(doc)
    return info.value.details


def test_gcloud_export_parses_with_every_section() -> None:
    p = parse_policy(yaml.safe_load(GCLOUD_EXPORT))
    assert p.name == "projects/example-project/policy"
    assert p.global_policy_evaluation_mode is GlobalPolicyEvaluationMode.ENABLE
    assert [x.text for x in p.admission_whitelist_patterns] == [
        "gcr.io/google_containers/*",
        "k8s.gcr.io/**",
    ]
    assert p.default_admission_rule.evaluation_mode is EvaluationMode.ALWAYS_DENY
    assert set(p.cluster_admission_rules) == {"us-central1-a.prod-cluster"}
    sa = p.kubernetes_service_account_admission_rules["prod:deployer"]
    freshness = sa.checks.get(Freshness)
    assert freshness is not None
    assert freshness.maximum_scan_age_hours == 24
    assert "spiffe://example.com/ns/test-ns/sa/default" in p.istio_service_identity_admission_rules
    assert p.referenced_attestors() == {"projects/example-project/attestors/qa"}


def test_round_trip_is_stable_and_etag_follows_content() -> None:
    p = parse_policy(yaml.safe_load(GCLOUD_EXPORT))
    again = parse_policy(p.to_dict())
    assert again.to_dict() == p.to_dict()
    assert again.etag == p.etag
    changed = p.to_dict()
    changed["defaultAdmissionRule"]["evaluationMode"] = "ALWAYS_ALLOW"
    assert parse_policy(changed).etag != p.etag
    # Output-only fields (etag, updateTime) are read but never written back.
    assert "etag" not in p.to_dict()
    assert "updateTime" not in p.to_dict()


def test_key_order_does_not_change_the_etag() -> None:
    a = {
        "name": "projects/p/policy",
        "defaultAdmissionRule": {
            "evaluationMode": "ALWAYS_ALLOW",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
        },
    }
    b = {
        "defaultAdmissionRule": {
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "evaluationMode": "ALWAYS_ALLOW",
        },
        "name": "projects/p/policy",
    }
    assert parse_policy(a).etag == parse_policy(b).etag


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {
                "defaultAdmissionRule": {
                    "evaluationMode": "REQUIRE",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                }
            },
            "defaultAdmissionRule.evaluationMode: 'REQUIRE' is not one of ALWAYS_ALLOW, REQUIRE_ATTESTATION, ALWAYS_DENY",
        ),
        ({}, "defaultAdmissionRule: is required"),
        ([], "document: expected an object, got a list"),
        (
            {"defaultAdmissionRule": {"evaluationMode": "ALWAYS_ALLOW"}},
            "defaultAdmissionRule.enforcementMode: is required; expected one of ENFORCED_BLOCK_AND_AUDIT_LOG, DRYRUN_AUDIT_LOG_ONLY",
        ),
        (
            {
                "name": "p/policy",
                "defaultAdmissionRule": {
                    "evaluationMode": "ALWAYS_ALLOW",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                },
            },
            "name: 'p/policy' is not of the form projects/PROJECT/policy",
        ),
        (
            {
                "globalPolicyEvaluationMode": "ON",
                "defaultAdmissionRule": {
                    "evaluationMode": "ALWAYS_ALLOW",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                },
            },
            "globalPolicyEvaluationMode: 'ON' is not one of ENABLE, DISABLE",
        ),
        (
            {
                "defaultAdmissionRule": {
                    "evaluationMode": "REQUIRE_ATTESTATION",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                    "requireAttestationsBy": ["qa"],
                }
            },
            "defaultAdmissionRule.requireAttestationsBy[0]: 'qa' is not of the form projects/PROJECT/attestors/ID",
        ),
        (
            {
                "defaultAdmissionRule": {
                    "evaluationMode": "REQUIRE_ATTESTATION",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                    "requireAttestationBy": [],
                }
            },
            "defaultAdmissionRule.requireAttestationBy: unknown field",
        ),
        (
            {
                "defaultAdmissionRule": {
                    "evaluationMode": "ALWAYS_ALLOW",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                    "requireAttestationsBy": ["projects/p/attestors/qa"],
                }
            },
            "defaultAdmissionRule.requireAttestationsBy: only allowed with evaluationMode REQUIRE_ATTESTATION, not ALWAYS_ALLOW",
        ),
        (
            {
                "admissionWhitelistPatterns": [{"namePattern": "gcr*/x"}],
                "defaultAdmissionRule": {
                    "evaluationMode": "ALWAYS_ALLOW",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                },
            },
            "admissionWhitelistPatterns[0].namePattern: name pattern 'gcr*/x' has a wildcard in the registry",
        ),
        (
            {
                "kubernetesServiceAccountAdmissionRules": {
                    "deployer": {
                        "evaluationMode": "ALWAYS_ALLOW",
                        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                    }
                },
                "defaultAdmissionRule": {
                    "evaluationMode": "ALWAYS_ALLOW",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                },
            },
            "kubernetesServiceAccountAdmissionRules[deployer]: key 'deployer' is not of the form namespace:serviceaccount",
        ),
        (
            {
                "clusterAdmissionRules": {
                    "prod": {
                        "evaluationMode": "ALWAYS_ALLOW",
                        "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                    }
                },
                "defaultAdmissionRule": {
                    "evaluationMode": "ALWAYS_ALLOW",
                    "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                },
            },
            "clusterAdmissionRules[prod]: key 'prod' is not of the form location.clusterId",
        ),
    ],
)
def test_parse_errors_name_the_path_and_the_expectation(doc: Any, expected: str) -> None:
    assert any(d.startswith(expected) for d in details(doc)), details(doc)


def test_every_violation_is_collected_in_one_error() -> None:
    found = details(
        {
            "defaultAdmissionRule": {"evaluationMode": "NOPE", "enforcementMode": "NOPE"},
            "kubernetesNamespaceAdmissionRules": {
                "ns": {"evaluationMode": 3, "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG"}
            },
            "extra": True,
        }
    )
    assert len(found) == 4
    assert any(
        d.startswith("kubernetesNamespaceAdmissionRules[ns].evaluationMode: 3 is not one of")
        for d in found
    )
    assert any(d.startswith("extra: unknown field") for d in found)


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        (
            {"vulnerabilities": {"maximumFixableSeverity": "SEVERE"}},
            "defaultAdmissionRule.chainproofChecks.vulnerabilities.maximumFixableSeverity: 'SEVERE' is not one of",
        ),
        (
            {"freshness": {"maximumScanAgeHours": 0}},
            "defaultAdmissionRule.chainproofChecks.freshness.maximumScanAgeHours: must be greater than 0",
        ),
        (
            {"freshness": {"maximumScanAgeHours": "24h"}},
            "defaultAdmissionRule.chainproofChecks.freshness.maximumScanAgeHours: expected a number, got '24h'",
        ),
        (
            {"requiredPredicates": [{"predicateType": "SLSA"}]},
            "defaultAdmissionRule.chainproofChecks.requiredPredicates[0].predicateType: 'SLSA' is neither a URI",
        ),
        (
            {"requiredPredicates": [{"predicateType": "SBOM"}]},
            "defaultAdmissionRule.chainproofChecks.requiredPredicates[0].attestors: must name at least one attestor",
        ),
        (
            {"cel": "attestations.exists(a, "},
            "defaultAdmissionRule.chainproofChecks.cel: CEL expression does not compile",
        ),
        (
            {"vulnerabilities": {"allowedCves": ["CVE-1"], "blockedCves": ["cve-1"]}},
            "defaultAdmissionRule.chainproofChecks.vulnerabilities: CVEs both allowed and blocked: CVE-1",
        ),
        (
            {"trustedRepositories": ["Bad Repo"]},
            "defaultAdmissionRule.chainproofChecks.trustedRepositories[0]:",
        ),
        ({"sbom": True}, "defaultAdmissionRule.chainproofChecks.sbom: expected an object"),
        ({"sboms": True}, "defaultAdmissionRule.chainproofChecks.sboms: unknown field"),
    ],
)
def test_chainproof_check_errors_have_paths(checks: dict[str, Any], expected: str) -> None:
    doc = {
        "defaultAdmissionRule": {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "chainproofChecks": checks,
        }
    }
    assert any(d.startswith(expected) for d in details(doc)), details(doc)


def test_chainproof_checks_round_trip() -> None:
    checks = {
        "vulnerabilities": {
            "maximumFixableSeverity": "LOW",
            "maximumUnfixableSeverity": "HIGH",
            "allowedCves": ["CVE-2024-1"],
            "blockedCves": ["CVE-2024-2"],
        },
        "requiredPredicates": [
            {"predicateType": "SLSA_PROVENANCE", "attestors": ["projects/p/attestors/build"]}
        ],
        "freshness": {"maximumScanAgeHours": 24},
        "trustedBuilders": ["https://github.com/actions/runner/**"],
        "trustedSourceRepositories": ["github.com/acme/*"],
        "trustedRepositories": ["gcr.io/acme/**"],
        "cel": "size(attestations) > 0",
    }
    doc = {
        "defaultAdmissionRule": {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "chainproofChecks": checks,
        }
    }
    assert parse_policy(doc).to_dict()["defaultAdmissionRule"]["chainproofChecks"] == checks


def test_attestor_with_pgp_and_pkix_keys_round_trips() -> None:
    doc = {
        "name": "projects/p/attestors/qa",
        "description": "QA sign-off",
        "userOwnedGrafeasNote": {
            "noteReference": "projects/p/notes/qa",
            "publicKeys": [
                {"id": "7F3A", "comment": "old", "asciiArmoredPgpPublicKey": "-----BEGIN PGP"},
                {
                    "id": "//kms/key/1",
                    "pkixPublicKey": {
                        "publicKeyPem": "-----BEGIN PUBLIC KEY",
                        "signatureAlgorithm": "ECDSA_P256_SHA256",
                    },
                },
            ],
        },
    }
    a = parse_attestor(doc)
    assert a.key_ids == {"7F3A", "//kms/key/1"}
    assert [k.key_type for k in a.public_keys] == ["PGP", "PKIX"]
    assert a.to_dict() == doc


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"name": "qa"}, "name: 'qa' is not of the form projects/PROJECT/attestors/ID"),
        ({}, "userOwnedGrafeasNote: is required"),
        (
            {"userOwnedGrafeasNote": {"noteReference": "qa"}},
            "userOwnedGrafeasNote.noteReference: 'qa' is not of the form projects/PROJECT/notes/ID",
        ),
        (
            {
                "userOwnedGrafeasNote": {
                    "noteReference": "projects/p/notes/n",
                    "publicKeys": [{"id": "k"}],
                }
            },
            "userOwnedGrafeasNote.publicKeys[0]: expected exactly one of asciiArmoredPgpPublicKey or pkixPublicKey",
        ),
        (
            {
                "userOwnedGrafeasNote": {
                    "noteReference": "projects/p/notes/n",
                    "publicKeys": [
                        {
                            "pkixPublicKey": {
                                "publicKeyPem": "x",
                                "signatureAlgorithm": "ED448_SHA512",
                            }
                        }
                    ],
                }
            },
            "userOwnedGrafeasNote.publicKeys[0].pkixPublicKey.signatureAlgorithm: 'ED448_SHA512' is not one of",
        ),
        (
            {
                "userOwnedGrafeasNote": {
                    "noteReference": "projects/p/notes/n",
                    "publicKeys": [
                        {
                            "pkixPublicKey": {
                                "publicKeyPem": "x",
                                "signatureAlgorithm": "ECDSA_P256_SHA256",
                            }
                        }
                    ],
                }
            },
            "userOwnedGrafeasNote.publicKeys[0].id: is required for a PKIX key",
        ),
        (
            {
                "userOwnedGrafeasNote": {
                    "noteReference": "projects/p/notes/n",
                    "publicKeys": [
                        {"id": "a", "asciiArmoredPgpPublicKey": "x"},
                        {"id": "a", "asciiArmoredPgpPublicKey": "y"},
                    ],
                }
            },
            "userOwnedGrafeasNote.publicKeys[1].id: duplicate key id 'a'",
        ),
    ],
)
def test_attestor_errors_have_paths(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_attestor(doc)
    assert any(d.startswith(expected) for d in info.value.details), info.value.details
