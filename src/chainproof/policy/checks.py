"""chainproof's evidence checks: what a rule may require beyond Binary Authorization's attestors.

A rule carries them under the key ``chainproofChecks`` (see ``docs/policy.md``):

- ``vulnerabilities``: severity thresholds for fixable and unfixable findings, allowed and
  blocked CVEs, after VEX ``not_affected``/``fixed`` statements for the image remove findings;
- ``requiredPredicates``: in-toto predicate types (SLSA provenance, CycloneDX/SPDX SBOM,
  vulnerability scan, or any URI), each signed by every named attestor;
- ``freshness``: the newest vulnerability scan is at most N hours old;
- ``trustedBuilders`` / ``trustedSourceRepositories``: read from verified SLSA provenance;
- ``trustedRepositories``: image name patterns the image must live under;
- ``cel``: a CEL expression over the verified statements, compiled when the policy is parsed.

This module owns parsing those checks and judging one image's evidence against them. It also
owns the attestor requirement shared with ``requireAttestationsBy``. Choosing the rule, and
combining results into a decision, belong to :mod:`chainproof.policy.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import celpy
from celpy.adapter import json_to_cel

from chainproof.domain.images import ImageReference
from chainproof.errors import InvalidArgument
from chainproof.policy._fields import FieldReader, Problems, index
from chainproof.policy.attestors import ATTESTOR_NAME, Attestor
from chainproof.policy.decision import RequirementResult
from chainproof.policy.evidence import (
    FAILURE_LABELS,
    AttestationKind,
    FailureReason,
    ImageEvidence,
    ProvenanceFact,
    Severity,
    VerifiedAttestation,
    VexStatus,
    VulnerabilityFinding,
)
from chainproof.policy.patterns import (
    ImageNamePattern,
    StringPattern,
    compile_image_pattern,
    compile_string_pattern,
    normalise_source_uri,
)

# A scan stamped slightly in the future is clock skew between scanner and server, not fraud.
CLOCK_SKEW = timedelta(minutes=5)


class Threshold(StrEnum):
    """The highest severity a rule tolerates, or one of Kritis' two special values."""

    ALLOW_ALL = "ALLOW_ALL"
    BLOCK_ALL = "BLOCK_ALL"
    MINIMAL = "MINIMAL"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    def permits(self, severity: Severity) -> bool:
        if self is Threshold.ALLOW_ALL:
            return True
        if self is Threshold.BLOCK_ALL:
            return False
        return severity <= Severity[self.value]


# Aliases an author may write instead of a predicate type URI; each matches by prefix, so
# versions (v0.2, v1, bom/v1.5, Document/v2.3) are all accepted.
PREDICATE_ALIASES: Mapping[str, tuple[str, ...]] = {
    "SLSA_PROVENANCE": ("https://slsa.dev/provenance/",),
    "CYCLONEDX_SBOM": ("https://cyclonedx.org/bom",),
    "SPDX_SBOM": ("https://spdx.dev/Document",),
    "SBOM": ("https://cyclonedx.org/bom", "https://spdx.dev/Document"),
    "VULNERABILITY_SCAN": (
        "https://cosign.sigstore.dev/attestation/vuln/",
        "https://in-toto.io/attestation/vulns",
    ),
}
_SLSA_PREFIX = PREDICATE_ALIASES["SLSA_PROVENANCE"]


@dataclass(frozen=True, slots=True)
class VulnerabilityCheck:
    maximum_fixable: Threshold = Threshold.ALLOW_ALL
    maximum_unfixable: Threshold = Threshold.ALLOW_ALL
    allowed_cves: frozenset[str] = frozenset()
    blocked_cves: frozenset[str] = frozenset()
    # Without a scan, "no findings" means "never looked"; failing closed is the safe reading.
    require_scan: bool = True


@dataclass(frozen=True, slots=True)
class PredicateRequirement:
    predicate_type: str  # as written: an alias or a URI
    attestors: tuple[str, ...]

    def accepts(self, predicate_type: str | None) -> bool:
        if predicate_type is None:
            return False
        prefixes = PREDICATE_ALIASES.get(self.predicate_type)
        if prefixes is None:
            return predicate_type == self.predicate_type
        return predicate_type.startswith(prefixes)


@dataclass(frozen=True, slots=True)
class CelCheck:
    expression: str
    program: Any = field(repr=False, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class ChainproofChecks:
    vulnerabilities: VulnerabilityCheck | None = None
    required_predicates: tuple[PredicateRequirement, ...] = ()
    maximum_scan_age_hours: float | None = None
    trusted_builders: tuple[StringPattern, ...] = ()
    trusted_source_repositories: tuple[StringPattern, ...] = ()
    trusted_repositories: tuple[ImageNamePattern, ...] = ()
    cel: CelCheck | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.vulnerabilities
            or self.required_predicates
            or self.maximum_scan_age_hours is not None
            or self.trusted_builders
            or self.trusted_source_repositories
            or self.trusted_repositories
            or self.cel
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        v = self.vulnerabilities
        if v is not None:
            vd: dict[str, Any] = {
                "maximumFixableSeverity": v.maximum_fixable.value,
                "maximumUnfixableSeverity": v.maximum_unfixable.value,
            }
            if v.allowed_cves:
                vd["allowedCves"] = sorted(v.allowed_cves)
            if v.blocked_cves:
                vd["blockedCves"] = sorted(v.blocked_cves)
            if not v.require_scan:
                vd["requireScan"] = False
            out["vulnerabilities"] = vd
        if self.required_predicates:
            out["requiredPredicates"] = [
                {"predicateType": p.predicate_type, "attestors": list(p.attestors)}
                for p in self.required_predicates
            ]
        if self.maximum_scan_age_hours is not None:
            hours = self.maximum_scan_age_hours
            out["freshness"] = {"maximumScanAgeHours": int(hours) if hours.is_integer() else hours}
        if self.trusted_builders:
            out["trustedBuilders"] = [p.text for p in self.trusted_builders]
        if self.trusted_source_repositories:
            out["trustedSourceRepositories"] = [p.text for p in self.trusted_source_repositories]
        if self.trusted_repositories:
            out["trustedRepositories"] = [p.text for p in self.trusted_repositories]
        if self.cel is not None:
            out["cel"] = self.cel.expression
        return out


# ---------------------------------------------------------------------------------------------
# Parsing


def compile_cel(expression: str) -> CelCheck:
    """Compile a CEL expression; raise InvalidArgument with the parser's message."""
    env = celpy.Environment()
    try:
        ast = env.compile(expression)
        program = env.program(ast)
    except Exception as exc:  # cel-python raises several unrelated types for bad input
        message = " ".join(str(exc).split())
        raise InvalidArgument(f"CEL expression does not compile: {message}") from exc
    return CelCheck(expression, program)


def read_checks(problems: Problems, path: str, data: object) -> ChainproofChecks:
    r = FieldReader(
        problems,
        path,
        data,
        (
            "vulnerabilities",
            "requiredPredicates",
            "freshness",
            "trustedBuilders",
            "trustedSourceRepositories",
            "trustedRepositories",
            "cel",
        ),
    )
    vulns = _read_vulnerabilities(problems, r.at("vulnerabilities"), r.raw("vulnerabilities"))
    predicates = tuple(
        _read_predicate(problems, p, item) for p, item in r.object_list("requiredPredicates")
    )
    hours: float | None = None
    if r.has("freshness"):
        f = FieldReader(problems, r.at("freshness"), r.raw("freshness"), ("maximumScanAgeHours",))
        hours = f.number("maximumScanAgeHours", required=True)
        if hours is not None and hours <= 0:
            problems.add(f.at("maximumScanAgeHours"), f"must be greater than 0, got {hours:g}")
            hours = None
    builders = _patterns(problems, r.at("trustedBuilders"), r.string_list("trustedBuilders"))
    sources = _patterns(
        problems,
        r.at("trustedSourceRepositories"),
        r.string_list("trustedSourceRepositories"),
        normalise=True,
    )
    repositories: list[ImageNamePattern] = []
    for i, text in enumerate(r.string_list("trustedRepositories")):
        try:
            repositories.append(compile_image_pattern(text))
        except InvalidArgument as exc:
            problems.add(index(r.at("trustedRepositories"), i), exc.message)
    cel: CelCheck | None = None
    expression = r.string("cel")
    if expression:
        try:
            cel = compile_cel(expression)
        except InvalidArgument as exc:
            problems.add(r.at("cel"), exc.message)
    return ChainproofChecks(
        vulnerabilities=vulns,
        required_predicates=predicates,
        maximum_scan_age_hours=hours,
        trusted_builders=builders,
        trusted_source_repositories=sources,
        trusted_repositories=tuple(repositories),
        cel=cel,
    )


def _patterns(
    problems: Problems, path: str, texts: Sequence[str], *, normalise: bool = False
) -> tuple[StringPattern, ...]:
    out: list[StringPattern] = []
    for i, text in enumerate(texts):
        try:
            out.append(compile_string_pattern(text, normalise=normalise))
        except InvalidArgument as exc:
            problems.add(index(path, i), exc.message)
    return tuple(out)


def _read_vulnerabilities(problems: Problems, path: str, data: object) -> VulnerabilityCheck | None:
    if data is None:
        return None
    r = FieldReader(
        problems,
        path,
        data,
        (
            "maximumFixableSeverity",
            "maximumUnfixableSeverity",
            "allowedCves",
            "blockedCves",
            "requireScan",
        ),
    )
    check = VulnerabilityCheck(
        maximum_fixable=r.enum("maximumFixableSeverity", Threshold, default=Threshold.ALLOW_ALL),
        maximum_unfixable=r.enum(
            "maximumUnfixableSeverity", Threshold, default=Threshold.ALLOW_ALL
        ),
        allowed_cves=frozenset(_cve_id(c) for c in r.string_list("allowedCves")),
        blocked_cves=frozenset(_cve_id(c) for c in r.string_list("blockedCves")),
        require_scan=r.boolean("requireScan", default=True),
    )
    both = check.allowed_cves & check.blocked_cves
    if both:
        problems.add(path, f"CVEs both allowed and blocked: {', '.join(sorted(both))}")
    return check


def _read_predicate(problems: Problems, path: str, data: object) -> PredicateRequirement:
    r = FieldReader(problems, path, data, ("predicateType", "attestors"))
    ptype = r.string("predicateType", required=True)
    if ptype and ptype not in PREDICATE_ALIASES and "://" not in ptype:
        problems.add(
            r.at("predicateType"),
            f"{ptype!r} is neither a URI nor one of {', '.join(PREDICATE_ALIASES)}",
        )
    attestors = r.string_list("attestors")
    if r.ok and not attestors:
        problems.add(r.at("attestors"), "must name at least one attestor")
    for i, name in enumerate(attestors):
        if not ATTESTOR_NAME.fullmatch(name):
            problems.add(
                index(r.at("attestors"), i),
                f"{name!r} is not of the form projects/PROJECT/attestors/ID",
            )
    return PredicateRequirement(ptype, attestors)


def _cve_id(text: str) -> str:
    """``providers/goog-vulnz/notes/CVE-2017-1000082`` and ``cve-2017-1000082`` → one form."""
    return text.strip().rsplit("/", 1)[-1].upper()


# ---------------------------------------------------------------------------------------------
# Judging


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What every check may look at for one image."""

    image: ImageReference
    evidence: ImageEvidence
    attestors: Mapping[str, Attestor]
    now: datetime
    request: Mapping[str, Any]  # namespace, serviceAccount, cluster (for CEL)


_KEY_FAILURES = frozenset({FailureReason.UNKNOWN_KEY, FailureReason.BAD_SIGNATURE})


def short_key(key_id: str) -> str:
    return key_id if len(key_id) <= 16 else key_id[:16] + "…"


def _count_phrase(failed: Sequence[tuple[str, str | None]]) -> str:
    """``[("signed by unknown key", "7F3A…"), ("for another digest", None)]`` → phrase."""
    grouped: dict[str, list[str]] = {}
    for label, key in failed:
        grouped.setdefault(label, [])
        if key:
            grouped[label].append(short_key(key))
    parts = []
    for label, keys in grouped.items():
        count = sum(1 for lab, _ in failed if lab == label)
        suffix = f" {', '.join(sorted(set(keys)))}" if keys else ""
        parts.append(f"{count} {label}{suffix}")
    return ", ".join(parts)


def check_attested_by(
    ctx: CheckContext,
    attestor_name: str,
    *,
    requirement: PredicateRequirement | None = None,
    kind: str = "attestation",
) -> RequirementResult:
    """Is there a verified attestation for the image by ``attestor_name`` (of the predicate)?"""
    what = "attestation" if requirement is None else f"{requirement.predicate_type} attestation"
    name = f"{what} by {attestor_name}"
    image = ctx.image.canonical
    attestor = ctx.attestors.get(attestor_name)
    if attestor is None:
        return RequirementResult(
            kind,
            name,
            False,
            f"the policy requires attestor {attestor_name}, which does not exist: create it "
            "or correct the policy",
        )
    listed = attestor.key_ids
    # A PGP key stored without an id is identified by fingerprint only once crypto/ loads it;
    # then the service's key_id cannot be cross-checked here and is trusted as given.
    check_keys = all(k.id for k in attestor.public_keys)
    consulted: list[str] = []
    keys: list[str] = []
    rejected: list[tuple[str, str | None]] = []
    for att in ctx.evidence.attestations:
        if att.attestor != attestor_name:
            continue
        consulted.append(att.occurrence)
        keys.append(att.key_id)
        if check_keys and att.key_id not in listed:
            rejected.append(("signed by a key the attestor no longer lists", att.key_id))
            continue
        if requirement is not None and (
            att.kind is not AttestationKind.IN_TOTO or not requirement.accepts(att.predicate_type)
        ):
            rejected.append((f"of predicate type {att.predicate_type or 'none'}", None))
            continue
        return RequirementResult(
            kind,
            name,
            True,
            f"verified {att.kind.value} attestation {att.occurrence} signed with key "
            f"{short_key(att.key_id)}",
            (att.occurrence,),
            (att.key_id,),
        )
    for bad in ctx.evidence.failed_attestations:
        if bad.attestor not in (None, attestor_name):
            continue
        consulted.append(bad.occurrence)
        if bad.key_id:
            keys.append(bad.key_id)
        # The key matters to the reader only when the key is the problem.
        shown = bad.key_id if bad.reason in _KEY_FAILURES else None
        rejected.append((FAILURE_LABELS[bad.reason], shown))
    found = f"{len(rejected)} found, {_count_phrase(rejected)}" if rejected else "none found"
    hint = _attestation_hint(attestor, requirement)
    return RequirementResult(
        kind,
        name,
        False,
        f"no {what} by {attestor_name} for {image}: {found}; {hint}",
        tuple(consulted),
        tuple(dict.fromkeys(keys)),
    )


def _attestation_hint(attestor: Attestor, requirement: PredicateRequirement | None) -> str:
    ids = ", ".join(sorted(short_key(k) for k in attestor.key_ids)) or "its listed keys"
    if requirement is None:
        return (
            f"sign the image digest with one of the attestor's keys ({ids}) and upload the "
            f"attestation as an occurrence of {attestor.note_reference or 'its note'}"
        )
    return (
        f"attest a {requirement.predicate_type} statement about the image digest with one of "
        f"the attestor's keys ({ids})"
    )


def check_vulnerabilities(ctx: CheckContext, check: VulnerabilityCheck) -> RequirementResult:
    image = ctx.image.canonical
    name = "vulnerability thresholds"
    occurrences = tuple(
        f.occurrence for f in ctx.evidence.vulnerabilities if f.occurrence is not None
    )
    if check.require_scan and not ctx.evidence.scans:
        return RequirementResult(
            "vulnerabilities",
            name,
            False,
            f"no vulnerability scan is recorded for {image}, so an empty list of findings "
            "proves nothing: scan the image and upload the result",
            occurrences,
        )
    resolved = {
        v.cve.upper()
        for v in ctx.evidence.vex
        if v.status in (VexStatus.NOT_AFFECTED, VexStatus.FIXED)
    }
    suppressed = allowed = 0
    violations: list[str] = []
    for finding in ctx.evidence.vulnerabilities:
        cve = _cve_id(finding.cve)
        if cve in resolved:
            suppressed += 1
            continue
        if cve in check.blocked_cves:
            violations.append(f"{cve}{_in_package(finding)} is blocked by the policy")
            continue
        if cve in check.allowed_cves:
            allowed += 1
            continue
        violation = _threshold_violation(finding, check)
        if violation:
            violations.append(violation)
    total = len(ctx.evidence.vulnerabilities)
    summary = f"{total} findings, {suppressed} resolved by VEX, {allowed} allowed by the policy"
    if violations:
        return RequirementResult(
            "vulnerabilities",
            name,
            False,
            f"{len(violations)} vulnerabilities in {image} exceed the policy: "
            f"{'; '.join(violations)}; upgrade the affected packages and rebuild, or record "
            "a VEX not_affected statement if the image is not affected",
            occurrences,
        )
    return RequirementResult(
        "vulnerabilities", name, True, f"{summary}, none above the thresholds", occurrences
    )


def _in_package(f: VulnerabilityFinding) -> str:
    return f" in {f.package}" if f.package else ""


def _threshold_violation(f: VulnerabilityFinding, check: VulnerabilityCheck) -> str | None:
    # An unrated finding cannot be shown to be below a threshold: treat it as CRITICAL.
    severity = f.severity if f.severity is not Severity.SEVERITY_UNSPECIFIED else Severity.CRITICAL
    rated = f.severity.name if f.severity is not Severity.SEVERITY_UNSPECIFIED else "unrated"
    cve = _cve_id(f.cve)
    if f.fix_available:
        if check.maximum_fixable.permits(severity):
            return None
        return (
            f"{cve}{_in_package(f)} ({rated}, fix available) exceeds maximumFixableSeverity "
            f"{check.maximum_fixable.value}"
        )
    if check.maximum_unfixable.permits(severity):
        return None
    return (
        f"{cve}{_in_package(f)} ({rated}, no fix) exceeds maximumUnfixableSeverity "
        f"{check.maximum_unfixable.value}"
    )


def check_freshness(ctx: CheckContext, max_hours: float) -> RequirementResult:
    image = ctx.image.canonical
    name = f"vulnerability scan at most {max_hours:g} h old"
    scans = [s for s in ctx.evidence.scans if s.scanned_at <= ctx.now + CLOCK_SKEW]
    consulted = tuple(s.occurrence for s in ctx.evidence.scans if s.occurrence)
    if not scans:
        future = len(ctx.evidence.scans)
        why = f" ({future} dated in the future were ignored)" if future else ""
        return RequirementResult(
            "freshness",
            name,
            False,
            f"no vulnerability scan is recorded for {image}{why}: scan the image and upload "
            "the result",
            consulted,
        )
    newest = max(scans, key=lambda s: s.scanned_at)
    age = ctx.now - newest.scanned_at
    hours = age.total_seconds() / 3600
    stamp = f"scanned {newest.scanned_at.isoformat()} by {newest.scanner}"
    # Exact boundary: a scan exactly max_hours old still passes.
    if age <= timedelta(hours=max_hours):
        return RequirementResult(
            "freshness", name, True, f"newest scan is {hours:.1f} h old ({stamp})", consulted
        )
    return RequirementResult(
        "freshness",
        name,
        False,
        f"the newest vulnerability scan of {image} is {hours:.1f} h old ({stamp}); the policy "
        f"allows at most {max_hours:g} h: rescan the image",
        consulted,
    )


def provenance_facts(evidence: ImageEvidence) -> tuple[ProvenanceFact, ...]:
    """Facts the service extracted, plus those read off verified SLSA attestations."""
    facts = list(evidence.provenance)
    known = {f.occurrence for f in facts if f.occurrence}
    for att in evidence.attestations:
        if att.occurrence in known or att.predicate is None:
            continue
        if not (att.predicate_type or "").startswith(_SLSA_PREFIX):
            continue
        fact = _fact_from_slsa(att)
        if fact is not None:
            facts.append(fact)
    return tuple(facts)


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _fact_from_slsa(att: VerifiedAttestation) -> ProvenanceFact | None:
    p = att.predicate
    # SLSA v1 first, then v0.2/v0.1.
    builder = _get(p, "runDetails", "builder", "id") or _get(p, "builder", "id")
    if not isinstance(builder, str):
        return None
    sources: list[str] = []
    ext = _get(p, "buildDefinition", "externalParameters")
    for candidate in (
        _get(ext, "source"),
        _get(ext, "source", "uri"),
        _get(ext, "workflow", "repository"),
        _get(p, "invocation", "configSource", "uri"),
    ):
        if isinstance(candidate, str):
            sources.append(candidate)
    if not sources:
        deps = _get(p, "buildDefinition", "resolvedDependencies") or _get(p, "materials") or []
        if isinstance(deps, list):
            sources.extend(
                d["uri"]
                for d in deps
                if isinstance(d, Mapping)
                and isinstance(d.get("uri"), str)
                and d["uri"].startswith("git+")
            )
    return ProvenanceFact(builder, tuple(sources), att.occurrence, att.attestor)


def _provenance_check(
    ctx: CheckContext,
    *,
    kind: str,
    name: str,
    patterns: Sequence[StringPattern],
    values: Callable[[ProvenanceFact], Iterable[str]],
    what: str,
) -> RequirementResult:
    image = ctx.image.canonical
    facts = provenance_facts(ctx.evidence)
    consulted = tuple(f.occurrence for f in facts if f.occurrence)
    trusted = ", ".join(p.text for p in patterns)
    if not facts:
        return RequirementResult(
            kind,
            name,
            False,
            f"no verified SLSA provenance for {image}: attest the build's provenance with a "
            "trusted attestor",
        )
    # Every provenance about this digest must agree: one trusted build does not excuse another
    # claim, for the same bytes, by a builder or source nobody trusts.
    for fact in facts:
        items = list(values(fact))
        if not items:
            return RequirementResult(
                kind,
                name,
                False,
                f"provenance {fact.occurrence or '(unnamed)'} for {image} names no {what}; the "
                f"policy trusts only {trusted}",
                consulted,
            )
        for item in items:
            if not any(p.matches(item) for p in patterns):
                return RequirementResult(
                    kind,
                    name,
                    False,
                    f"provenance {fact.occurrence or '(unnamed)'} for {image} names {what} "
                    f"{item!r}, which the policy does not trust (trusted: {trusted})",
                    consulted,
                )
    return RequirementResult(
        kind, name, True, f"{len(facts)} verified provenance statements, all trusted", consulted
    )


def check_builders(ctx: CheckContext, patterns: Sequence[StringPattern]) -> RequirementResult:
    return _provenance_check(
        ctx,
        kind="trusted-builder",
        name="trusted builder",
        patterns=patterns,
        values=lambda f: [f.builder_id],
        what="builder",
    )


def check_sources(ctx: CheckContext, patterns: Sequence[StringPattern]) -> RequirementResult:
    return _provenance_check(
        ctx,
        kind="trusted-source",
        name="trusted source repository",
        patterns=patterns,
        values=lambda f: [normalise_source_uri(u) for u in f.source_uris],
        what="source repository",
    )


def check_repository(ctx: CheckContext, patterns: Sequence[ImageNamePattern]) -> RequirementResult:
    for pattern in patterns:
        if pattern.matches(ctx.image):
            return RequirementResult(
                "trusted-repository",
                "trusted repository",
                True,
                f"{ctx.image.name} matches {pattern.text}",
            )
    trusted = ", ".join(p.text for p in patterns)
    return RequirementResult(
        "trusted-repository",
        "trusted repository",
        False,
        f"{ctx.image.name} is not in a trusted registry or repository (trusted: {trusted}): "
        "push the image to one of them",
    )


def cel_activation(ctx: CheckContext) -> dict[str, Any]:
    """The variables a CEL expression sees; documented in docs/policy.md."""
    resolved = {
        v.cve.upper()
        for v in ctx.evidence.vex
        if v.status in (VexStatus.NOT_AFFECTED, VexStatus.FIXED)
    }
    doc: dict[str, Any] = {
        "image": {
            "name": ctx.image.name,
            "registry": ctx.image.registry,
            "repository": ctx.image.repository,
            "tag": ctx.image.tag or "",
            "digest": ctx.image.digest or "",
        },
        "attestations": [
            {
                "attestor": a.attestor,
                "keyId": a.key_id,
                "occurrence": a.occurrence,
                "kind": a.kind.value,
                "predicateType": a.predicate_type or "",
                "statement": _plain(a.statement) if a.statement is not None else {},
                "predicate": _plain(a.predicate) if a.predicate is not None else {},
                "createTime": a.created.isoformat() if a.created else "",
            }
            for a in ctx.evidence.attestations
        ],
        "vulnerabilities": [
            {
                "cve": _cve_id(f.cve),
                "severity": f.severity.name,
                "fixAvailable": f.fix_available,
                "package": f.package or "",
                "resolvedByVex": _cve_id(f.cve) in resolved,
            }
            for f in ctx.evidence.vulnerabilities
        ],
        "provenance": [
            {"builderId": f.builder_id, "sourceUris": list(f.source_uris)}
            for f in provenance_facts(ctx.evidence)
        ],
        "request": dict(ctx.request),
    }
    return {key: json_to_cel(value) for key, value in doc.items()}


def _plain(value: Any) -> Any:
    """Frozen mappings back to dicts, which is what cel-python's converter understands."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def check_cel(ctx: CheckContext, cel: CelCheck) -> RequirementResult:
    image = ctx.image.canonical
    name = f"CEL expression {cel.expression!r}"
    consulted = tuple(a.occurrence for a in ctx.evidence.attestations)
    try:
        result = cel.program.evaluate(cel_activation(ctx))
    except Exception as exc:  # evaluation errors are data problems: deny, and say which
        message = " ".join(str(exc).split())
        return RequirementResult(
            "cel",
            name,
            False,
            f"the CEL expression could not be evaluated for {image}: {message}",
            consulted,
        )
    if isinstance(result, Exception):
        return RequirementResult(
            "cel", name, False, f"the CEL expression failed for {image}: {result}", consulted
        )
    if isinstance(result, (celpy.celtypes.BoolType, bool)):
        if bool(result):
            return RequirementResult("cel", name, True, "evaluated to true", consulted)
        return RequirementResult(
            "cel",
            name,
            False,
            f"the CEL expression evaluated to false for {image}: the verified statements do "
            "not satisfy it",
            consulted,
        )
    return RequirementResult(
        "cel",
        name,
        False,
        f"the CEL expression returned {type(result).__name__}, not a boolean: fix the policy",
        consulted,
    )


def run_checks(ctx: CheckContext, checks: ChainproofChecks) -> list[RequirementResult]:
    results: list[RequirementResult] = []
    for req in checks.required_predicates:
        for attestor in req.attestors:
            results.append(check_attested_by(ctx, attestor, requirement=req, kind="predicate"))
    if checks.vulnerabilities is not None:
        results.append(check_vulnerabilities(ctx, checks.vulnerabilities))
    if checks.maximum_scan_age_hours is not None:
        results.append(check_freshness(ctx, checks.maximum_scan_age_hours))
    if checks.trusted_builders:
        results.append(check_builders(ctx, checks.trusted_builders))
    if checks.trusted_source_repositories:
        results.append(check_sources(ctx, checks.trusted_source_repositories))
    if checks.trusted_repositories:
        results.append(check_repository(ctx, checks.trusted_repositories))
    if checks.cel is not None:
        results.append(check_cel(ctx, checks.cel))
    return results
