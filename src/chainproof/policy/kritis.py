"""Kritis' policy resources, read from their Kubernetes YAML and judged with Kritis' meaning.

Three kinds of ``apiVersion: kritis.grafeas.io/v1beta1``:

- **ImageSecurityPolicy** (ISP): ``spec.imageAllowlist`` and
  ``spec.packageVulnerabilityRequirements{maximumSeverity, maximumFixUnavailableSeverity,
  allowlistCVEs}``. A finding with no fix is held to ``maximumFixUnavailableSeverity``
  (default ALLOW_ALL), any other to ``maximumSeverity`` (default CRITICAL); severities order
  MINIMAL < LOW < MEDIUM < HIGH < CRITICAL; ``ALLOW_ALL`` and ``BLOCK_ALL`` are the special
  values; an image without a digest is a violation ("not fully qualified"). Every ISP of the
  namespace must pass. VEX is *not* applied here: that is chainproof's extension, not Kritis'.
- **GenericAttestationPolicy** (GAP): ``spec.admissionAllowlistPatterns[{namePattern}]`` and
  ``spec.attestationAuthorityNames``. An image passes when, for at least one GAP, it carries a
  verified attestation by *every* authority that GAP names; allowlist patterns of all GAPs
  exempt an image (the same globs as Binary Authorization).
- **AttestationAuthority** (AA): ``spec.noteReference`` and ``spec.publicKeys`` — data only,
  like :class:`~chainproof.policy.attestors.Attestor`, into which :meth:`as_attestor` converts.

The legacy spellings ``imageWhitelist``, ``whitelistCVEs`` and ``admissionWhitelistPatterns``
are read as well. One deliberate departure: Kritis admits everything when a namespace has no
ISP and no GAP; chainproof denies (an empty requirement set denies) unless the caller passes
``admit_without_policies=True``. Fetching resources per namespace is the service's job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.errors import InvalidArgument
from chainproof.policy._fields import FieldReader, Problems, describe, index, join
from chainproof.policy.attestors import (
    Attestor,
    AttestorPublicKey,
    read_pkix_key,
)
from chainproof.policy.checks import CheckContext, Threshold, check_attested_by
from chainproof.policy.checks.base import cve_id
from chainproof.policy.checks.vulnerabilities import exceeded
from chainproof.policy.decision import (
    Decision,
    ImageDecision,
    Outcome,
    RequirementResult,
    RuleSelection,
)
from chainproof.policy.evaluate import AdmissionRequest, incomplete_failures, pin_hint
from chainproof.policy.evidence import Evidence, ImageEvidence
from chainproof.policy.patterns import ImageNamePattern, compile_image_pattern

API_VERSION = "kritis.grafeas.io/v1beta1"
_NOTE = re.compile(r"(?:v1beta1/|v1/)?projects/[^/\s]+/notes/[^/\s]+")


@dataclass(frozen=True, slots=True)
class KritisMeta:
    name: str
    namespace: str | None  # None: not pinned to a namespace, applies wherever it is passed

    @property
    def qualified(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class ImageSecurityPolicy:
    meta: KritisMeta
    image_allowlist: tuple[ImageNamePattern, ...] = ()
    maximum_severity: Threshold = Threshold.CRITICAL
    maximum_fix_unavailable_severity: Threshold = Threshold.ALLOW_ALL
    allowlist_cves: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class GenericAttestationPolicy:
    meta: KritisMeta
    attestation_authority_names: tuple[str, ...]
    admission_allowlist_patterns: tuple[ImageNamePattern, ...] = ()


@dataclass(frozen=True, slots=True)
class AttestationAuthority:
    meta: KritisMeta
    note_reference: str
    public_keys: tuple[AttestorPublicKey, ...] = ()

    def as_attestor(self) -> Attestor:
        """The same data as a Binary Authorization attestor, named by the AA's name."""
        note = self.note_reference
        for prefix in ("v1beta1/", "v1/"):
            note = note.removeprefix(prefix)
        return Attestor(name=self.meta.name, note_reference=note, public_keys=self.public_keys)


KritisResource = ImageSecurityPolicy | GenericAttestationPolicy | AttestationAuthority
_KINDS = ("ImageSecurityPolicy", "GenericAttestationPolicy", "AttestationAuthority")


def parse_kritis_resource(data: Mapping[str, Any] | object) -> KritisResource:
    """Parse one Kritis resource (any of the three kinds), every problem reported with its path."""
    problems = Problems("Kritis resource")
    resource = _read_resource(problems, "", data)
    problems.raise_if_any()
    assert resource is not None  # no problems means the reader produced a resource
    return resource


def parse_kritis_resources(documents: Sequence[object]) -> tuple[KritisResource, ...]:
    """Parse a multi-document YAML stream (already loaded); ``[i]`` prefixes each path."""
    problems = Problems("Kritis resources")
    out: list[KritisResource] = []
    for i, doc in enumerate(documents):
        if doc is None:  # an empty document between two '---'
            continue
        resource = _read_resource(problems, f"[{i}]", doc)
        if resource is not None:
            out.append(resource)
    problems.raise_if_any()
    return tuple(out)


def _read_resource(problems: Problems, path: str, data: object) -> KritisResource | None:
    r = FieldReader(problems, path, data, ("apiVersion", "kind", "metadata", "spec", "status"))
    if not r.ok:
        return None
    api = r.string("apiVersion", required=True)
    if api and api != API_VERSION:
        problems.add(r.at("apiVersion"), f"{api!r} is not {API_VERSION}")
    kind = r.string("kind", required=True)
    meta = _read_meta(problems, r.at("metadata"), r.raw("metadata"))
    spec_path = r.at("spec")
    spec = r.raw("spec")
    if kind == "ImageSecurityPolicy":
        return _read_isp(problems, spec_path, spec, meta)
    if kind == "GenericAttestationPolicy":
        return _read_gap(problems, spec_path, spec, meta)
    if kind == "AttestationAuthority":
        return _read_aa(problems, spec_path, spec, meta)
    if kind:
        problems.add(r.at("kind"), f"{kind!r} is not one of {', '.join(_KINDS)}")
    return None


def _read_meta(problems: Problems, path: str, data: object) -> KritisMeta:
    # Kubernetes metadata carries labels, annotations, uid…: read what we need, ignore the rest.
    if not isinstance(data, Mapping):
        problems.add(path, f"expected an object with a name, got {describe(data)}")
        return KritisMeta("", None)
    name = data.get("name")
    namespace = data.get("namespace")
    if not isinstance(name, str) or not name:
        problems.add(join(path, "name"), "is required")
        name = ""
    if namespace is not None and not isinstance(namespace, str):
        problems.add(join(path, "namespace"), f"expected a string, got {describe(namespace)}")
        namespace = None
    return KritisMeta(name, namespace or None)


def _image_patterns(problems: Problems, path: str, texts: Sequence[str]) -> list[ImageNamePattern]:
    out: list[ImageNamePattern] = []
    for i, text in enumerate(texts):
        try:
            out.append(compile_image_pattern(text))
        except InvalidArgument as exc:
            problems.add(index(path, i), exc.message)
    return out


def _read_isp(problems: Problems, path: str, data: object, meta: KritisMeta) -> ImageSecurityPolicy:
    r = FieldReader(
        problems,
        path,
        data,
        (
            "imageAllowlist",
            "imageWhitelist",
            "packageVulnerabilityRequirements",
            # Kritis' webhook signs with these; chainproof never signs in the evaluator.
            "attestationAuthorityName",
            "privateKeySecretName",
        ),
    )
    allow_key = "imageAllowlist" if r.has("imageAllowlist") else "imageWhitelist"
    allowlist = _image_patterns(problems, r.at(allow_key), r.string_list(allow_key))
    max_sev, max_nofix, cves = Threshold.CRITICAL, Threshold.ALLOW_ALL, frozenset[str]()
    if r.has("packageVulnerabilityRequirements"):
        v = FieldReader(
            problems,
            r.at("packageVulnerabilityRequirements"),
            r.raw("packageVulnerabilityRequirements"),
            ("maximumSeverity", "maximumFixUnavailableSeverity", "allowlistCVEs", "whitelistCVEs"),
        )
        max_sev = v.enum("maximumSeverity", Threshold, default=Threshold.CRITICAL)
        max_nofix = v.enum("maximumFixUnavailableSeverity", Threshold, default=Threshold.ALLOW_ALL)
        cve_key = "allowlistCVEs" if v.has("allowlistCVEs") else "whitelistCVEs"
        cves = frozenset(cve_id(c) for c in v.string_list(cve_key))
    return ImageSecurityPolicy(meta, tuple(allowlist), max_sev, max_nofix, cves)


def _read_gap(
    problems: Problems, path: str, data: object, meta: KritisMeta
) -> GenericAttestationPolicy:
    r = FieldReader(
        problems,
        path,
        data,
        ("admissionAllowlistPatterns", "admissionWhitelistPatterns", "attestationAuthorityNames"),
    )
    key = (
        "admissionAllowlistPatterns"
        if r.has("admissionAllowlistPatterns")
        else "admissionWhitelistPatterns"
    )
    patterns: list[ImageNamePattern] = []
    for p_path, item in r.object_list(key):
        p = FieldReader(problems, p_path, item, ("namePattern",))
        text = p.string("namePattern", required=True)
        if text.strip():
            try:
                patterns.append(compile_image_pattern(text))
            except InvalidArgument as exc:
                problems.add(p.at("namePattern"), exc.message)
    names = r.string_list("attestationAuthorityNames")
    if r.ok and not names:
        # Kritis itself rejects such a GAP as malformed at review time; say so when it is read.
        problems.add(r.at("attestationAuthorityNames"), "must name at least one authority")
    return GenericAttestationPolicy(meta, names, tuple(patterns))


def _read_aa(problems: Problems, path: str, data: object, meta: KritisMeta) -> AttestationAuthority:
    r = FieldReader(problems, path, data, ("noteReference", "publicKeys", "policyType"))
    note = r.string("noteReference", required=True)
    if note and not _NOTE.fullmatch(note):
        problems.add(
            r.at("noteReference"), f"{note!r} is not of the form [v1beta1/]projects/P/notes/N"
        )
    keys: list[AttestorPublicKey] = []
    for k_path, item in r.object_list("publicKeys"):
        k = FieldReader(
            problems,
            k_path,
            item,
            ("keyType", "keyId", "asciiArmoredPgpPublicKey", "pkixPublicKey"),
        )
        key_type = k.string("keyType") or "PGP"
        if key_type not in ("PGP", "PKIX"):
            problems.add(k.at("keyType"), f"{key_type!r} is not one of PGP, PKIX")
        key_id = k.string("keyId")
        if key_type == "PKIX":
            pkix = read_pkix_key(problems, k.at("pkixPublicKey"), k.raw("pkixPublicKey"))
            if not key_id and k.ok:
                problems.add(k.at("keyId"), "is required for a PKIX key")
            keys.append(AttestorPublicKey(key_id, "", None, pkix))
        else:
            armored = k.string("asciiArmoredPgpPublicKey", required=True)
            keys.append(AttestorPublicKey(key_id, "", armored, None))
    return AttestationAuthority(meta, note, tuple(keys))


# ---------------------------------------------------------------------------------------------
# Judging


def _applies(meta: KritisMeta, namespace: str | None) -> bool:
    return meta.namespace is None or meta.namespace == (namespace or "default")


def evaluate_kritis(
    policies: Sequence[ImageSecurityPolicy | GenericAttestationPolicy],
    authorities: Sequence[AttestationAuthority],
    request: AdmissionRequest,
    evidence: Evidence,
    now: datetime,
    *,
    admit_without_policies: bool = False,
) -> Decision:
    """Judge ``request`` the way Kritis' webhook does: every ISP and (any) GAP must pass."""
    namespace = request.namespace or "default"
    isps = [
        p for p in policies if isinstance(p, ImageSecurityPolicy) and _applies(p.meta, namespace)
    ]
    gaps = [
        p
        for p in policies
        if isinstance(p, GenericAttestationPolicy) and _applies(p.meta, namespace)
    ]
    by_name = {a.meta.name: a.as_attestor() for a in authorities if _applies(a.meta, namespace)}
    names = [p.meta.qualified for p in isps] + [p.meta.qualified for p in gaps]
    why = (
        f"Kritis policies in namespace {namespace}: {', '.join(names)}"
        if names
        else f"no ImageSecurityPolicy or GenericAttestationPolicy applies in namespace {namespace}"
    )
    selection = RuleSelection("kritis", namespace, None, None, why)
    images: list[ImageDecision] = []
    for text in request.images:
        try:
            image = parse_image_reference(text)
        except InvalidArgument as exc:
            images.append(
                ImageDecision(
                    text,
                    None,
                    RuleSelection(
                        "invalid-image", None, None, None, "the reference does not parse"
                    ),
                    (RequirementResult("reference", "valid image reference", False, exc.message),),
                    Outcome.DENIED,
                )
            )
            continue
        results: list[RequirementResult] = []
        if not isps and not gaps:
            results.append(
                RequirementResult(
                    "kritis-none",
                    "a Kritis policy",
                    admit_without_policies,
                    "no Kritis policy applies; admitted as Kritis would"
                    if admit_without_policies
                    else f"no ImageSecurityPolicy or GenericAttestationPolicy applies in "
                    f"namespace {namespace}, and an empty requirement set denies: create one",
                )
            )
        # As for Binary Authorization rules: only the authorities of this namespace vouch, and
        # evidence read in part decides nothing.
        scoped = evidence.for_image(image).scoped_to(frozenset(by_name))
        ctx = CheckContext(image, scoped, by_name, now, request.as_cel())
        if image.digest is not None:
            results.extend(incomplete_failures(image, scoped))
        if gaps:
            results.append(_judge_gaps(gaps, ctx))
        results.extend(_judge_isp(isp, image, ctx.evidence) for isp in isps)
        outcome = Outcome.ALLOWED if all(r.passed for r in results) else Outcome.DENIED
        images.append(ImageDecision(text, image.canonical, selection, tuple(results), outcome))
    decided = tuple(images)
    return Decision(decided, Decision.combine(decided), now, ", ".join(names) or "Kritis")


def _judge_gaps(gaps: Sequence[GenericAttestationPolicy], ctx: CheckContext) -> RequirementResult:
    name = "attestations required by a GenericAttestationPolicy"
    for gap in gaps:
        for pattern in gap.admission_allowlist_patterns:
            if pattern.matches(ctx.image):
                return RequirementResult(
                    "kritis-gap",
                    name,
                    True,
                    f"allowlisted by {gap.meta.qualified} pattern {pattern.text!r}",
                )
    if ctx.image.digest is None:
        return RequirementResult("kritis-gap", name, False, pin_hint(ctx.image))
    failures: list[str] = []
    occurrences: list[str] = []
    keys: list[str] = []
    for gap in gaps:
        results = [check_attested_by(ctx, a) for a in gap.attestation_authority_names]
        for res in results:
            occurrences.extend(res.occurrences)
            keys.extend(res.key_ids)
        missing = [r for r in results if not r.passed]
        if not missing:
            return RequirementResult(
                "kritis-gap",
                name,
                True,
                f"attested by every authority of {gap.meta.qualified}: "
                f"{', '.join(gap.attestation_authority_names)}",
                tuple(dict.fromkeys(occurrences)),
                tuple(dict.fromkeys(keys)),
            )
        failures.append(f"{gap.meta.qualified}: " + "; ".join(r.reason for r in missing))
    return RequirementResult(
        "kritis-gap",
        name,
        False,
        "no GenericAttestationPolicy is satisfied — " + " | ".join(failures),
        tuple(dict.fromkeys(occurrences)),
        tuple(dict.fromkeys(keys)),
    )


def _judge_isp(
    isp: ImageSecurityPolicy, image: ImageReference, evidence: ImageEvidence
) -> RequirementResult:
    name = f"ImageSecurityPolicy {isp.meta.qualified}"
    for pattern in isp.image_allowlist:
        if pattern.matches(image):
            return RequirementResult(
                "kritis-isp", name, True, f"{image.canonical} is in imageAllowlist ({pattern.text})"
            )
    if image.digest is None:
        return RequirementResult(
            "kritis-isp", name, False, f"not a fully qualified image: {pin_hint(image)}"
        )
    violations: list[str] = []
    occurrences = tuple(v.occurrence for v in evidence.vulnerabilities if v.occurrence)
    for finding in evidence.vulnerabilities:
        cve = cve_id(finding.cve)
        if cve in isp.allowlist_cves:
            continue
        # Kritis compares Grafeas enum numbers, so an unrated finding (0) is within any
        # threshold but BLOCK_ALL: it is judged as rated, unlike chainproof's own check.
        threshold = exceeded(
            finding, finding.severity, isp.maximum_severity, isp.maximum_fix_unavailable_severity
        )
        if threshold is None:
            continue
        if finding.fix_available:
            violations.append(
                f"{cve} ({finding.severity.name}) exceeds maximumSeverity {threshold.value}"
            )
        else:
            violations.append(
                f"unfixable {cve} ({finding.severity.name}) exceeds "
                f"maximumFixUnavailableSeverity {threshold.value}"
            )
    if violations:
        return RequirementResult(
            "kritis-isp",
            name,
            False,
            f"{len(violations)} vulnerabilities in {image.canonical} violate {isp.meta.qualified}: "
            f"{'; '.join(violations)}; upgrade and rebuild, or add the CVE to allowlistCVEs",
            occurrences,
        )
    return RequirementResult(
        "kritis-isp",
        name,
        True,
        f"{len(evidence.vulnerabilities)} findings, none above the thresholds",
        occurrences,
    )
