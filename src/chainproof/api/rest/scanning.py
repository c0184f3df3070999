"""REST routes of chainproof's scanner: importing OSV advisories, reading them with the images
they affect, scanning an image now, and the vulnerability policy check the "not-vulnerable"
attestor signs on. An image's findings are read through :mod:`chainproof.api.rest.ingest`'s
``images/vulnerabilities``. Each route only translates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from chainproof.api.rest.auth import collection as all_projects
from chainproof.api.rest.auth import requires
from chainproof.api.rest.body import decode_json
from chainproof.api.rest.deps import Scanner, VouchingDep, services_of
from chainproof.api.rest.grafeas import JSON_BODY, json_response
from chainproof.domain.images import parse_image_reference
from chainproof.domain.names import validate_project_id
from chainproof.errors import InvalidArgument
from chainproof.iam import permissions as perms
from chainproof.iam.authorizer import Resource
from chainproof.services.judge.vouching import read_vouch_policy
from chainproof.vuln.osv import parse_record

#: Records per import request; the CLI sends larger imports in chunks of this size.
MAX_RECORDS_PER_REQUEST = 5_000


ImageQuery = Annotated[str, Query(alias="image", description="registry/repo@sha256:…")]

router = APIRouter(prefix="/v1", tags=["scanning"])


def provider_project(request: Request) -> Resource:
    """The scanner's provider project, where advisories live as VULNERABILITY notes."""
    return Resource(services_of(request).settings.scanning.provider_project)


@router.post(
    "/advisories:import",
    openapi_extra=JSON_BODY,
    dependencies=[requires(perms.ADVISORIES_IMPORT, on=provider_project)],
)
async def import_advisories(request: Request, scanner: Scanner) -> Response:
    """Import OSV records (``{"records": [...]}``); idempotent; re-matches affected images."""
    data = decode_json(await request.body())
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list) or not records:
        raise InvalidArgument(
            'request body must be {"records": [<OSV record>, ...]} with at least one record'
        )
    if len(records) > MAX_RECORDS_PER_REQUEST:
        raise InvalidArgument(
            f"{len(records)} records in one request; at most {MAX_RECORDS_PER_REQUEST} "
            "(send larger imports in chunks)"
        )
    problems: list[str] = []
    parsed = []
    for i, record in enumerate(records):
        try:
            parsed.append(parse_record(record, source=f"records[{i}]"))
        except InvalidArgument as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidArgument(
            f"{len(problems)} of {len(records)} records are not valid OSV; nothing was imported",
            details=problems[:50],
        )
    report = await scanner.import_advisories(parsed)
    return json_response(report.as_dict())


@router.get(
    "/advisories/{advisory_id}",
    # It lists affected images of every project, so it is checked on all projects.
    dependencies=[requires(perms.ADVISORIES_GET, on=all_projects)],
)
async def get_advisory(advisory_id: str, scanner: Scanner) -> Response:
    """An advisory as imported, and the images chainproof found it in."""
    advisory = await scanner.get_advisory(advisory_id)
    images = []
    for record in await scanner.affected_images(advisory_id):
        issue = record.occurrence.vulnerability.package_issue
        images.append(
            {
                "project": record.project,
                "resource": record.resource,
                "occurrence": record.occurrence.name,
                "package": issue[0].affected_package if issue else "",
                "version": issue[0].affected_version.name if issue else "",
                "fixedVersion": issue[0].fixed_version.name if issue else "",
            }
        )
    return json_response(
        {
            "advisory": dict(advisory.raw),
            "noteName": f"projects/{scanner.provider}/notes/{advisory.id}",
            "affectedImages": images,
        }
    )


@router.post("/projects/{project}/images:scan", dependencies=[requires(perms.OCCURRENCES_CREATE)])
async def scan_image(project: str, image: ImageQuery, scanner: Scanner) -> Response:
    """Match one image's PACKAGE occurrences now."""
    validate_project_id(project, field="project")
    report = await scanner.scan_image(project, parse_image_reference(image).canonical)
    return json_response(
        {
            "resource": report.resource,
            "packages": report.packages,
            "findings": len(report.findings),
            "opened": report.opened,
            "closed": report.closed,
            "kept": report.kept,
            "undecided": [
                {"package": u.package.display, "advisory": u.advisory_id, "reason": u.reason}
                for u in report.unknown
            ],
        }
    )


@router.post(
    "/projects/{project}/images:checkVulnerabilityPolicy",
    openapi_extra=JSON_BODY,
    dependencies=[requires(perms.POLICY_EVALUATE)],
)
async def check_vulnerability_policy(
    project: str, request: Request, vouching: VouchingDep
) -> Response:
    """Judge an image against a vulnerability policy (``{"image", "policy"}``), signing nothing:
    the attestor that holds the key signs only when ``passed`` is true."""
    validate_project_id(project, field="project")
    data = decode_json(await request.body())
    if not isinstance(data, dict) or not isinstance(data.get("image"), str):
        raise InvalidArgument('request body must be {"image": "<ref@sha256:…>", "policy": {...}}')
    policy = read_vouch_policy(data.get("policy"))
    result = await vouching.check(project, data["image"], policy)
    return json_response(result.to_dict())
