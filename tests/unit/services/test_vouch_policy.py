"""The vouching attestor's policy: chainproof's form and Kritis' ImageSecurityPolicy."""

from __future__ import annotations

import pytest
import yaml

from chainproof.errors import InvalidArgument
from chainproof.policy.checks.vulnerabilities import Threshold
from chainproof.services.judge.vouching import DEFAULT_MAX_SCAN_AGE_HOURS, read_vouch_policy


def test_chainproof_form_and_its_default_freshness() -> None:
    p = read_vouch_policy({"vulnerabilities": {"maximumFixableSeverity": "LOW"}})
    assert p.vulnerabilities.maximum_fixable is Threshold.LOW
    assert p.freshness.maximum_scan_age_hours == DEFAULT_MAX_SCAN_AGE_HOURS
    p = read_vouch_policy(
        {
            "vulnerabilities": {"maximumFixableSeverity": "HIGH"},
            "freshness": {"maximumScanAgeHours": 2},
        }
    )
    assert p.freshness.maximum_scan_age_hours == 2


def test_kritis_image_security_policy() -> None:
    isp = yaml.safe_load(
        """
apiVersion: kritis.grafeas.io/v1beta1
kind: ImageSecurityPolicy
metadata: {name: isp, namespace: prod}
spec:
  imageAllowlist: [gcr.io/trusted/tool:1.0]
  packageVulnerabilityRequirements:
    maximumSeverity: MEDIUM
    maximumFixUnavailableSeverity: HIGH
    allowlistCVEs: [providers/goog-vulnz/notes/CVE-2017-1000082]
"""
    )
    p = read_vouch_policy(isp)
    assert p.vulnerabilities.maximum_fixable is Threshold.MEDIUM
    assert p.vulnerabilities.maximum_unfixable is Threshold.HIGH
    assert "CVE-2017-1000082" in {c.rsplit("/", 1)[-1] for c in p.vulnerabilities.allowed_cves}
    assert p.freshness.maximum_scan_age_hours == DEFAULT_MAX_SCAN_AGE_HOURS


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, "no 'vulnerabilities' section"),
        ({"freshness": {"maximumScanAgeHours": 24}}, "no 'vulnerabilities' section"),
        ({"vulnerabilities": {"maximumFixableSeverity": "SORTA"}}, "vulnerability policy"),
        (
            {
                "apiVersion": "kritis.grafeas.io/v1beta1",
                "kind": "GenericAttestationPolicy",
                "metadata": {"name": "g"},
                "spec": {"attestationAuthorityNames": ["a"]},
            },
            "is no vulnerability policy",
        ),
    ],
)
def test_bad_policies_are_refused(doc: object, expected: str) -> None:
    with pytest.raises(InvalidArgument, match=expected):
        read_vouch_policy(doc)
