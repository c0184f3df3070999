"""REST routes of ingestion: one way in for SBOMs, scan reports, VEX and provenance, the stored
documents served back by digest, the sources of registry evidence recorded in the scribe
(``registryEvidence``: by occurrence, or every one about an image digest), and the queries
over the facts they became — among them an image's vulnerability findings, whoever found them,
with the VEX statement that resolves each (``images/vulnerabilities``;
``images:vulnerabilities`` is its deprecated spelling, answering in its old shape, grouped by
source)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from chainproof.api.rest.auth import requires
from chainproof.api.rest.deps import FindingsDep, Ingest, RegistrySourcesDep
from chainproof.api.rest.grafeas import json_response
from chainproof.iam import permissions as perms
from chainproof.services.judge.findings import Finding

_MEDIA = {
    "cyclonedx-xml": "application/vnd.cyclonedx+xml",
    "spdx-tag-value": "text/spdx",
}

ImageQuery = Annotated[str, Query(alias="image", description="registry/repo@sha256:…")]

router = APIRouter(prefix="/v1", tags=["ingest"])

_RAW_BODY = {
    "requestBody": {
        "required": True,
        "description": "the raw document (CycloneDX, SPDX, Trivy, Grype, OpenVEX, CSAF, "
        "in-toto statement, DSSE envelope or .intoto.jsonl bundle)",
        "content": {"application/octet-stream": {"schema": {"type": "string"}}},
    }
}


@router.post(
    "/projects/{project}:ingest",
    openapi_extra=_RAW_BODY,
    dependencies=[requires(perms.OCCURRENCES_CREATE)],
)
async def ingest_document(
    project: str,
    request: Request,
    service: Ingest,
    resource_uri: Annotated[str, Query(alias="resourceUri")] = "",
    fmt: Annotated[str, Query(alias="format")] = "",
    signatures: Annotated[
        str,
        Query(
            description="required: refuse unless every DSSE envelope verifies under an "
            "attestor (default when attestor is given); optional: store what does not verify "
            "as unattested"
        ),
    ] = "",
    attestors: Annotated[
        list[str] | None,
        Query(alias="attestor", description="an attestor that may vouch (repeatable)"),
    ] = None,
) -> Response:
    result = await service.ingest(
        f"projects/{project}",
        await request.body(),
        resource_uri=resource_uri,
        fmt=fmt,
        signatures=signatures,
        attestors=attestors or (),
    )
    return json_response(result.to_dict())


@router.get(
    "/projects/{project}/documents/{digest}", dependencies=[requires(perms.OCCURRENCES_GET)]
)
async def get_document(project: str, digest: str, service: Ingest) -> Response:
    fmt, content = await service.document(f"projects/{project}", digest)
    return Response(content, media_type=_MEDIA.get(fmt, "application/json"))


@router.get(
    "/projects/{project}/registryEvidence/{occurrence_id}",
    dependencies=[requires(perms.OCCURRENCES_GET)],
)
async def get_registry_source(
    project: str, occurrence_id: str, sources: RegistrySourcesDep
) -> Response:
    """Where occurrence ``occurrence_id`` was read when it was recorded from a registry: the
    registry manifest (``source``) and layer, and the attestor that verified it."""
    return json_response(await sources.get(f"projects/{project}", occurrence_id))


@router.get("/projects/{project}/registryEvidence", dependencies=[requires(perms.OCCURRENCES_LIST)])
async def list_registry_sources(
    project: str, sources: RegistrySourcesDep, image: ImageQuery = ""
) -> Response:
    """The sources of every occurrence recorded from a registry about ``image`` (by digest)."""
    found = await sources.of_image(f"projects/{project}", image)
    return json_response({"image": image, "registryEvidence": found})


@router.get("/projects/{project}/images/packages", dependencies=[requires(perms.OCCURRENCES_LIST)])
async def ingested_image_packages(
    project: str, service: Ingest, image: Annotated[str, Query()]
) -> Response:
    found = await service.packages(f"projects/{project}", image)
    return json_response({"image": image, "packages": found})


@router.get(
    "/projects/{project}/images/vulnerabilities", dependencies=[requires(perms.OCCURRENCES_LIST)]
)
async def image_vulnerabilities(project: str, findings: FindingsDep, image: ImageQuery) -> Response:
    """An image's findings in ``project`` (the scanner's and ingested ones, each naming its
    ``source``), with what VEX says of each and the statement that resolves it (``resolvedBy``),
    read as the judge reads it."""
    found = await findings.image_findings(project, image)
    return json_response(
        {"image": found.image, "vulnerabilities": [finding_json(f) for f in found.findings]}
    )


@router.get(
    "/projects/{project}/images:vulnerabilities",
    dependencies=[requires(perms.OCCURRENCES_LIST)],
    deprecated=True,
)
async def image_vulnerabilities_by_source(
    project: str, findings: FindingsDep, image: ImageQuery
) -> Response:
    """Deprecated: use ``images/vulnerabilities``. The same findings, grouped by ``source``."""
    found = await findings.image_findings(project, image)
    grouped = {s: [finding_json(f) for f in fs] for s, fs in found.by_source().items()}
    return json_response({"image": found.image, "sources": grouped})


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "id": f.vulnerability,
        # The name images/vulnerabilities first gave the id; kept for its clients.
        "vulnerability": f.vulnerability,
        "source": f.source,
        "severity": f.severity,
        "package": f.package,
        "version": f.version,
        "fixedVersion": f.fixed_version,
        "fixAvailable": f.fix_available,
        "vex": f.vex,
        "vexResolved": f.resolved,
        "resolvedBy": f.resolved_by,
        "occurrence": f.occurrence,
    }


@router.get("/projects/{project}/packages/images", dependencies=[requires(perms.OCCURRENCES_LIST)])
async def package_images(project: str, service: Ingest, purl: Annotated[str, Query()]) -> Response:
    found = await service.images_with(f"projects/{project}", purl)
    return json_response({"purl": purl, "images": found})
