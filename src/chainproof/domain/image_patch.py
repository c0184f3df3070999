"""Where a workload's images sit (as JSON Pointers) and the JSONPatch pinning tags to digests.

This module owns :func:`image_pointers` — for a Pod or any pod-template kind, the RFC 6901
pointer of every container image, init and ephemeral containers included — and
:func:`pin_patch`, the RFC 6902 patch that replaces each tag-only image with
``repo:tag@sha256:…`` (the tag kept for people, the digest for the kubelet and the judge).
Images that already carry a digest are left alone. Pure: resolving tags is the caller's job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chainproof.domain.images import parse_image_reference
from chainproof.domain.workloads import pod_spec_path
from chainproof.errors import InvalidArgument

__all__ = [
    "RESOLVED_ANNOTATION",
    "ImagePointer",
    "image_pointers",
    "pin_patch",
    "pinned_reference",
]

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
#: Annotation the mutating webhook leaves on the object: what it resolved, for the record.
RESOLVED_ANNOTATION = "chainproof.dev/resolved-images"


@dataclass(frozen=True, slots=True)
class ImagePointer:
    pointer: str  # /spec/containers/0/image
    location: str  # containers[0] (web)
    image: str


def image_pointers(obj: Mapping[str, Any], kind: str) -> tuple[ImagePointer, ...]:
    path = pod_spec_path(kind)
    here: Any = obj
    for key in path:
        here = here.get(key) if isinstance(here, Mapping) else None
    if not isinstance(here, Mapping):
        raise InvalidArgument(f"{kind} has no pod spec at {'.'.join(path)}")
    base = "/" + "/".join(path)
    out: list[ImagePointer] = []
    for list_name in _CONTAINER_LISTS:
        containers = here.get(list_name) or []
        if not isinstance(containers, list):
            raise InvalidArgument(f"{'.'.join(path)}.{list_name} must be a list of containers")
        for i, container in enumerate(containers):
            image = container.get("image") if isinstance(container, Mapping) else None
            if not isinstance(image, str) or not image.strip():
                raise InvalidArgument(f"{'.'.join(path)}.{list_name}[{i}].image is missing")
            name = container.get("name", "")
            out.append(
                ImagePointer(f"{base}/{list_name}/{i}/image", f"{list_name}[{i}] ({name})", image)
            )
    return tuple(out)


def pinned_reference(image: str, digest: str) -> str:
    """``image`` as written, with ``:latest`` when it had no tag, then ``@digest``."""
    ref = parse_image_reference(image)
    if ref.digest is not None:
        raise InvalidArgument(f"image {image} already names a digest")
    text = image.strip()
    return f"{text}@{digest}" if ref.tag is not None else f"{text}:latest@{digest}"


def pin_patch(
    pointers: tuple[ImagePointer, ...],
    digests: Mapping[str, str],
    *,
    annotations_present: bool,
    annotation_path: str = "/metadata/annotations",
) -> list[dict[str, Any]]:
    """JSONPatch operations pinning every pointer whose image is in ``digests``.

    An annotation recording ``{location: "tag → digest"}`` is added too, so that the decision
    made by the validating webhook can say which tags were resolved.
    """
    ops: list[dict[str, Any]] = []
    record: dict[str, str] = {}
    for p in pointers:
        digest = digests.get(p.image)
        if digest is None:
            continue
        pinned = pinned_reference(p.image, digest)
        ops.append({"op": "replace", "path": p.pointer, "value": pinned})
        record[p.location] = f"{p.image} -> {pinned}"
    if not ops:
        return ops
    value = json.dumps(record, sort_keys=True)
    key = RESOLVED_ANNOTATION.replace("~", "~0").replace("/", "~1")
    if annotations_present:
        ops.append({"op": "add", "path": f"{annotation_path}/{key}", "value": value})
    else:
        ops.append({"op": "add", "path": annotation_path, "value": {RESOLVED_ANNOTATION: value}})
    return ops
