"""An image's vulnerability findings, each with the VEX statement that resolves it: one answer
for ``GET /v1/projects/{p}/images/vulnerabilities`` (and its deprecated spelling
``images:vulnerabilities``) and for ``chainproof image vulns``.

The findings are the image's VULNERABILITY occurrences in the project, whoever wrote them
(chainproof's scanner, whose notes live in the provider project, or an ingested Trivy/Grype
report). Whether VEX resolves one is read the way the judge reads it
(:func:`chainproof.policy.checks.vulnerabilities.resolving_statement` over the evidence the
judge gathers): a statement speaks only for the finding, package and product it names, so the
answer here is the one an admission would act on. Returns typed records; the REST layer
renders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chainproof.domain.filters import And, Compare, FilterColumn
from chainproof.domain.images import parse_image_reference
from chainproof.domain.names import validate_project_id
from chainproof.errors import InvalidArgument, PayloadTooLarge
from chainproof.policy.checks.vulnerabilities import resolving_statement
from chainproof.policy.evidence import VexStatement
from chainproof.services.judge.vouching import Vouching
from chainproof.store.port import MetadataStore, OccurrenceRecord

#: Findings read for one image; more is refused rather than answered in part.
MAX_FINDINGS = 100_000
_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class Finding:
    """One VULNERABILITY occurrence about the image, and what VEX says of it."""

    #: ``chainproof`` for the scanner's findings, else the project of the finding's note.
    source: str
    #: The vulnerability's ID: the note's ID (CVE-…, GHSA-…, GO-…).
    vulnerability: str
    severity: str  # a Grafeas severity name; SEVERITY_UNSPECIFIED when none was given
    package: str
    version: str
    fixed_version: str
    fix_available: bool
    occurrence: str
    #: What VEX says: the resolving statement's state, else the finding's own assessment ("").
    vex: str
    #: The statement that resolves the finding (a VEX note or occurrence); "" when none does.
    resolved_by: str

    @property
    def resolved(self) -> bool:
        return bool(self.resolved_by)


@dataclass(frozen=True, slots=True)
class ImageFindings:
    image: str  # the canonical reference
    findings: tuple[Finding, ...]  # by vulnerability, then package

    def by_source(self) -> dict[str, list[Finding]]:
        grouped: dict[str, list[Finding]] = {}
        for f in self.findings:
            grouped.setdefault(f.source, []).append(f)
        return grouped


class FindingsService:
    def __init__(self, store: MetadataStore, vouching: Vouching, provider_project: str) -> None:
        self._store = store
        self._vouching = vouching
        self._provider = provider_project

    async def image_findings(self, project: str, image: str) -> ImageFindings:
        """The findings about ``image`` (which must name a digest) in ``project``."""
        validate_project_id(project, field="project")
        ref = parse_image_reference(image)
        if ref.digest is None:
            raise InvalidArgument(
                f"image {image!r} names no digest: findings are filed under "
                "registry/repository@sha256:… so that a tag moving never moves them"
            )
        rows = await self._vulnerabilities(project, ref.canonical)
        # As the judge reads it: a statement resolves only what it names, on this image.
        evidence = await self._vouching.evidence(project, ref)
        resolving: dict[str, VexStatement] = {}
        for f in evidence.vulnerabilities:
            statement = resolving_statement(evidence, f, ref)
            if statement is not None and f.occurrence:
                resolving[f.occurrence] = statement
        findings = [self._finding(r, resolving.get(r.occurrence.name)) for r in rows]
        findings.sort(key=lambda f: (f.vulnerability, f.package, f.occurrence))
        return ImageFindings(ref.canonical, tuple(findings))

    async def _vulnerabilities(self, project: str, resource: str) -> list[OccurrenceRecord]:
        where = And(
            (Compare(FilterColumn.KIND, "VULNERABILITY"), Compare(FilterColumn.RESOURCE, resource))
        )
        rows: list[OccurrenceRecord] = []
        after: str | None = None
        async with self._store.session(readonly=True) as s:
            while True:
                batch = await s.occurrences.page(project, where, after, _PAGE)
                rows.extend(batch)
                if len(rows) > MAX_FINDINGS:
                    raise PayloadTooLarge(
                        f"{resource} has more than {MAX_FINDINGS} findings in projects/{project}; "
                        "chainproof lists at most that many for one image"
                    )
                if len(batch) < _PAGE:
                    return rows
                after = batch[-1].occurrence_id

    def _finding(self, r: OccurrenceRecord, statement: VexStatement | None) -> Finding:
        v = r.occurrence.vulnerability
        issue = v.package_issue[0] if v.package_issue else None
        own = _enum_name(v.vex_assessment, "state") if v.HasField("vex_assessment") else ""
        source = "chainproof" if r.note_project == self._provider else f"projects/{r.note_project}"
        return Finding(
            source=source,
            vulnerability=r.note_id,
            severity=_enum_name(v, "effective_severity" if v.effective_severity else "severity")
            or "SEVERITY_UNSPECIFIED",
            package=issue.affected_package if issue else "",
            version=_version(issue.affected_version) if issue else "",
            fixed_version=_version(issue.fixed_version) if issue else "",
            fix_available=bool(v.fix_available),
            occurrence=r.occurrence.name,
            vex=statement.status.value.upper() if statement else own,
            resolved_by=statement.source if statement else "",
        )


def _version(version: Any) -> str:
    # Ingested findings carry the full version string; the scanner's carry its name only.
    return str(version.full_name or version.name)


def _enum_name(message: Any, field: str) -> str:
    """The name of an enum field's value; "" for 0 (unspecified) or a number the proto lacks."""
    number = getattr(message, field)
    if not number:
        return ""
    value = message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_number.get(number)
    return str(value.name) if value is not None else ""
