"""Where recorded registry evidence came from: the ``registry-evidence`` documents, read back.

This module owns :class:`RegistrySources`, the read side of
:mod:`~chainproof.services.scribe.registry_recording`: when the judge records a verified cosign
signature, attestation or key-signed bundle in the scribe, it files an occurrence and, beside
it, a document naming the registry manifest and layer it was read from and the attestor that
verified it. :meth:`RegistrySources.get` returns the document of one occurrence;
:meth:`RegistrySources.of_image` those of every recorded occurrence about one image, by digest.

Each document is returned as stored plus its ``name``
(``projects/{project}/registryEvidence/{occurrence_id}``). Permission checks are the
entrypoints' (the documents are about occurrences: ``occurrences.get`` for one, ``.list`` for
an image's).
"""

from __future__ import annotations

from typing import Any

from chainproof.domain.filters import And, Compare, FilterColumn, Or
from chainproof.domain.images import parse_image_reference
from chainproof.domain.names import parse_occurrence_name, parse_project_name
from chainproof.errors import FailedPrecondition, InvalidArgument, NotFound
from chainproof.services.scribe.registry_recording import RECORDS
from chainproof.store.judge import DocumentRecord
from chainproof.store.port import MetadataStore

__all__ = ["MAX_IMAGE_SOURCES", "RegistrySources"]

#: Occurrences about one image read to find its recorded sources; more is refused, not cut.
MAX_IMAGE_SOURCES = 1000
_PAGE = 500
#: The kinds recording files (simple signing: ATTESTATION; DSSE and key-signed bundles).
_RECORDED_KINDS = ("ATTESTATION", "DSSE_ATTESTATION")


def _json(record: DocumentRecord) -> dict[str, Any]:
    return {"name": f"projects/{record.project}/registryEvidence/{record.doc_id}", **record.data}


class RegistrySources:
    """See the module docstring."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    async def get(self, parent: str, occurrence_id: str) -> dict[str, Any]:
        """The source of occurrence ``occurrence_id`` of project ``parent``; NotFound when it
        was not recorded from a registry."""
        project = parse_project_name(parent)
        name = parse_occurrence_name(f"projects/{project}/occurrences/{occurrence_id}")
        async with self._store.session(readonly=True) as s:
            record = await s.documents.get(project, RECORDS, name.occurrence_id)
        if record is None:
            raise NotFound(
                f"occurrence {name} was not recorded from a registry (no registry-evidence "
                f"document in project {project})"
            )
        return _json(record)

    async def of_image(self, parent: str, image: str) -> list[dict[str, Any]]:
        """The sources of every occurrence recorded from a registry about ``image``
        (``registry/repo@sha256:…``; a tag is refused: records are kept by digest), in the
        order of their occurrences."""
        project = parse_project_name(parent)
        if not image:
            raise InvalidArgument("image is required: registry/repository@sha256:…")
        ref = parse_image_reference(image)
        if not ref.digest:
            raise InvalidArgument(
                f"image {image!r} names no digest: registry evidence is recorded by digest "
                "(registry/repository@sha256:…)"
            )
        kinds = Or(tuple(Compare(FilterColumn.KIND, k) for k in _RECORDED_KINDS))
        where = And((kinds, Compare(FilterColumn.RESOURCE, ref.canonical)))
        found: list[dict[str, Any]] = []
        read = 0
        after: str | None = None
        async with self._store.session(readonly=True) as s:
            while True:
                rows = await s.occurrences.page(project, where, after, _PAGE)
                read += len(rows)
                if read > MAX_IMAGE_SOURCES:
                    raise FailedPrecondition(
                        f"more than {MAX_IMAGE_SOURCES} attestation occurrences are filed "
                        f"about {ref.canonical} in project {project}: their registry sources "
                        "are not listed (ask for one occurrence's source by its ID instead)"
                    )
                for row in rows:
                    record = await s.documents.get(project, RECORDS, row.occurrence_id)
                    if record is not None:
                        found.append(_json(record))
                if len(rows) < _PAGE:
                    return found
                after = rows[-1].occurrence_id
