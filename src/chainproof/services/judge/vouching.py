"""The "not-vulnerable" automated attestor: sign an image only when its scan passes a policy.

After Kritis' signer and seed 003: :meth:`Vouching.vouch` gathers the image's vulnerability
evidence the way the judge does (VULNERABILITY and DISCOVERY occurrences, VEX applied),
checks it against a chainproof-style vulnerability policy, and only when every check passes
signs and uploads, under the attestor's note, one or both of: a simple-signing payload for
the image's digest (an ATTESTATION occurrence), and an in-toto statement with the ``vulns``
v0.1 predicate (https://in-toto.io/attestation/vulns/v0.1) listing the findings that remain
after VEX, the scanner and the scan time (a DSSE_ATTESTATION occurrence) — which a judge
policy reads as a signed scan (``attestedBy`` the attestor). Otherwise nothing is signed and
the result says why. The check's ``report`` carries what that predicate is built from, so a
client that holds the key builds and signs the same statement.

The policy is the ``vulnerabilities`` and ``freshness`` part of a rule's ``chainproofChecks``
(see docs/policy.md)::

    vulnerabilities: {maximumFixableSeverity: LOW, maximumUnfixableSeverity: HIGH}
    freshness: {maximumScanAgeHours: 24}

Freshness is never optional here: a policy without it is held to :data:`DEFAULT_MAX_SCAN_AGE_HOURS`,
so no scan older than the policy allows — and no image never scanned — is ever vouched for.
Keys stay in the process that holds them: the service only calls ``signer.sign(bytes)``
(:class:`chainproof.crypto.signing.Signer`, implemented for PKIX key files, and open to any
plug-in that implements the same two members).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chainproof.attest.vouch_forms import INTOTO_VULNS, SIMPLE_SIGNING, attestation_body
from chainproof.crypto.signing import Signer
from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.domain.messages import occurrence_from_json
from chainproof.domain.timestamps import CLOCK_SKEW, rfc3339
from chainproof.errors import InvalidArgument, NotFound
from chainproof.policy._fields import Problems
from chainproof.policy.checks import CheckContext, read_checks
from chainproof.policy.checks.freshness import Freshness
from chainproof.policy.checks.vulnerabilities import VulnerabilityCheck, resolving_statement
from chainproof.policy.decision import RequirementResult
from chainproof.policy.evidence import ImageEvidence
from chainproof.policy.kritis import ImageSecurityPolicy, parse_kritis_resource
from chainproof.services.common import utc_now
from chainproof.services.judge.evidence import EvidenceGatherer
from chainproof.services.scribe.grafeas import GrafeasService

DEFAULT_MAX_SCAN_AGE_HOURS = 24.0


@dataclass(frozen=True, slots=True)
class VouchPolicy:
    vulnerabilities: VulnerabilityCheck
    freshness: Freshness


def read_vouch_policy(data: object) -> VouchPolicy:
    """A vulnerability policy document (YAML/JSON decoded); raises InvalidArgument if wrong.

    Two forms: chainproof's (``vulnerabilities`` + ``freshness``, as in a rule's
    ``chainproofChecks``), or a Kritis ``ImageSecurityPolicy`` whose
    ``packageVulnerabilityRequirements`` become the thresholds. An ISP's ``imageAllowlist``
    is ignored on purpose: exempting an image from a check is no evidence that it is not
    vulnerable. Kritis has no freshness bound, so an ISP is held to the default.
    """
    if isinstance(data, dict) and str(data.get("apiVersion", "")).startswith("kritis.grafeas.io/"):
        resource = parse_kritis_resource(data)
        if not isinstance(resource, ImageSecurityPolicy):
            raise InvalidArgument(
                f"a Kritis {type(resource).__name__} is no vulnerability policy; expected an "
                "ImageSecurityPolicy or chainproof's {vulnerabilities, freshness} form"
            )
        return VouchPolicy(
            vulnerabilities=VulnerabilityCheck(
                maximum_fixable=resource.maximum_severity,
                maximum_unfixable=resource.maximum_fix_unavailable_severity,
                allowed_cves=resource.allowlist_cves,
            ),
            freshness=Freshness(DEFAULT_MAX_SCAN_AGE_HOURS),
        )
    problems = Problems("vulnerability policy")
    checks = read_checks(problems, "", data)
    problems.raise_if_any()
    vulnerabilities = checks.get(VulnerabilityCheck)
    if vulnerabilities is None:
        raise InvalidArgument(
            "vulnerability policy: no 'vulnerabilities' section; expected e.g. "
            "{vulnerabilities: {maximumFixableSeverity: LOW}, freshness: {maximumScanAgeHours: 24}}"
        )
    freshness = checks.get(Freshness) or Freshness(DEFAULT_MAX_SCAN_AGE_HOURS)
    return VouchPolicy(vulnerabilities=vulnerabilities, freshness=freshness)


@dataclass(slots=True)
class VouchResult:
    image: str
    passed: bool
    results: list[RequirementResult] = field(default_factory=list)
    #: The uploaded attestation, once signed (the first, when several forms were signed).
    occurrence: str | None = None
    occurrences: list[str] = field(default_factory=list)
    #: What the in-toto vulns predicate says: the newest scan and the findings after VEX.
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def signed(self) -> bool:
        return self.occurrence is not None

    @property
    def reasons(self) -> list[str]:
        return [r.reason for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "passed": self.passed,
            "signed": self.signed,
            "occurrence": self.occurrence,
            "occurrences": self.occurrences,
            "results": [r.to_dict() for r in self.results],
            "report": self.report,
        }


class Vouching:
    def __init__(
        self,
        grafeas: GrafeasService,
        gatherer: EvidenceGatherer,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._grafeas = grafeas
        self._gatherer = gatherer
        self._clock = clock

    async def vouch(
        self,
        project: str,
        image: str,
        policy: VouchPolicy,
        note_name: str,
        signer: Signer,
        *,
        evidence_projects: tuple[str, ...] = (),
        forms: tuple[str, ...] = (SIMPLE_SIGNING,),
    ) -> VouchResult:
        """Sign ``image`` for the attestor note ``note_name`` only if its evidence passes, in
        each of ``forms`` (simple signing, the in-toto vulns statement, or both)."""
        result = await self.check(project, image, policy, evidence_projects=evidence_projects)
        if not result.passed:
            return result
        ref = parse_image_reference(result.image)
        for form in forms:
            body = attestation_body(ref, form, note_name, signer, result.report)
            occurrence = await self._grafeas.create_occurrence(
                f"projects/{project}", occurrence_from_json(body)
            )
            result.occurrences.append(str(occurrence.name))
        result.occurrence = result.occurrences[0] if result.occurrences else None
        return result

    async def evidence(
        self,
        project: str,
        ref: ImageReference,
        evidence_projects: tuple[str, ...] = (),
        now: datetime | None = None,
    ) -> ImageEvidence:
        """The image's vulnerability evidence (findings, VEX, scans), gathered as the judge does."""
        gathered = await self._gatherer.gather(
            [ref], {}, evidence_projects or (project,), now or self._clock()
        )
        return gathered.for_image(ref)

    async def check(
        self,
        project: str,
        image: str,
        policy: VouchPolicy,
        *,
        evidence_projects: tuple[str, ...] = (),
    ) -> VouchResult:
        """Judge ``image`` against the policy without signing (``passed``: it may be signed)."""
        ref = parse_image_reference(image)
        if ref.digest is None:
            raise InvalidArgument(
                f"{image!r} names no digest; only a digest can be vouched for "
                "(registry/repository@sha256:…)"
            )
        now = self._clock()
        evidence = await self.evidence(project, ref, evidence_projects, now)
        ctx = CheckContext(image=ref, evidence=evidence, attestors={}, now=now, request={})
        results = [*policy.vulnerabilities.judge(ctx), *policy.freshness.judge(ctx)]
        return VouchResult(
            image=ref.canonical,
            passed=all(r.passed for r in results),
            results=results,
            report=_report(ref, evidence, now),
        )


def _report(ref: ImageReference, evidence: ImageEvidence, now: datetime) -> dict[str, Any]:
    """The newest scan and the findings that remain after VEX (what a vulns predicate says)."""
    scans = [s for s in evidence.scans if s.scanned_at <= now + CLOCK_SKEW]
    newest = max(scans, key=lambda s: s.scanned_at) if scans else None
    remaining = [
        f for f in evidence.vulnerabilities if resolving_statement(evidence, f, ref) is None
    ]
    return {
        "scan": {
            "scanner": newest.scanner,
            "scannedAt": rfc3339(newest.scanned_at),
        }
        if newest is not None
        else None,
        "findings": [
            {
                "id": f.cve,
                "severity": f.severity.name,
                "fixAvailable": f.fix_available,
                "package": f.package or "",
            }
            for f in remaining
        ],
    }


@dataclass(frozen=True, slots=True)
class ConfiguredVoucher:
    """An attestor the server signs for itself: its note, its policy, its key, its forms."""

    note_name: str
    policy: VouchPolicy
    signer: Signer
    forms: tuple[str, ...] = (SIMPLE_SIGNING,)


class AutoVoucher:
    """Runs the configured attestors whenever an image's scan changes its evidence.

    A passing image without a current simple-signing attestation by the voucher's note and
    key is signed; its in-toto vulns statement is replaced at every passing scan (it names the
    scan time and findings, which a judge policy checks). An image that no longer passes
    loses every attestation this voucher made, so a finding that appears after signing also
    withdraws the signature.
    """

    def __init__(
        self, vouching: Vouching, grafeas: GrafeasService, vouchers: Sequence[ConfiguredVoucher]
    ) -> None:
        self._vouching = vouching
        self._grafeas = grafeas
        self.vouchers = tuple(vouchers)

    async def image_changed(self, project: str, resource: str) -> list[VouchResult]:
        results: list[VouchResult] = []
        for voucher in self.vouchers:
            ours = await self._attestations(project, resource, voucher)
            check = await self._vouching.check(project, resource, voucher.policy)
            if check.passed:
                due = tuple(f for f in voucher.forms if f == INTOTO_VULNS or not ours[f])
                stale = ours[INTOTO_VULNS] if INTOTO_VULNS in due else []
                if due:
                    check = await self._vouching.vouch(
                        project,
                        resource,
                        voucher.policy,
                        voucher.note_name,
                        voucher.signer,
                        forms=due,
                    )
                if not check.signed:
                    stale = []  # nothing new was signed (it stopped passing meanwhile)
            else:
                stale = [name for names in ours.values() for name in names]
            for name in stale:
                with contextlib.suppress(NotFound):
                    await self._grafeas.delete_occurrence(name)
            results.append(check)
        return results

    async def _attestations(
        self, project: str, resource: str, voucher: ConfiguredVoucher
    ) -> dict[str, list[str]]:
        """This voucher's attestations of ``resource``, by form (its note and key id)."""
        found: dict[str, list[str]] = {SIMPLE_SIGNING: [], INTOTO_VULNS: []}
        for kind, form in (("ATTESTATION", SIMPLE_SIGNING), ("DSSE_ATTESTATION", INTOTO_VULNS)):
            page = await self._grafeas.list_occurrences(
                f"projects/{project}",
                f'kind="{kind}" AND resourceUrl="{resource}"',
                1000,
                "",
            )
            key = voucher.signer.key_id
            for o in page.items:
                if o.note_name != voucher.note_name:
                    continue
                if form == SIMPLE_SIGNING:
                    mine = any(s.public_key_id == key for s in o.attestation.signatures)
                else:
                    mine = any(s.keyid == key for s in o.dsse_attestation.envelope.signatures)
                if mine:
                    found[form].append(str(o.name))
        return found
