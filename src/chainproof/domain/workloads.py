"""Kubernetes workloads: which images an object would run, and who would run them.

Covers Pods and every object that carries a pod template (Deployment, ReplicaSet,
StatefulSet, DaemonSet, Job, CronJob, ReplicationController). Every image in
``containers``, ``initContainers`` and ``ephemeralContainers`` counts: an init container
runs with the same privileges as the others, so it is judged the same way. So does every
image volume (``volumes[].image.reference``): the node pulls it like a container image. A
service account name that is not a valid Kubernetes name is refused (it would select rules).

Parses plain JSON objects only; admission wire formats live in api.webhook.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chainproof.errors import InvalidArgument

#: Where the pod spec sits in each kind.
_POD_SPEC_PATH: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
SUPPORTED_KINDS = frozenset(_POD_SPEC_PATH)
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

BREAKGLASS_ANNOTATIONS = (
    "alpha.image-policy.k8s.io/break-glass",
    "kritis.grafeas.io/breakglass",
)


@dataclass(frozen=True, slots=True)
class ContainerImage:
    """One container's image, as written in the workload."""

    #: e.g. ``containers[0] (payment)``, for messages.
    location: str
    image: str


@dataclass(frozen=True, slots=True)
class Workload:
    kind: str
    name: str
    namespace: str
    service_account: str
    images: tuple[ContainerImage, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: The pod spec's ``imagePullSecrets`` names (the ServiceAccount's are read separately).
    image_pull_secrets: tuple[str, ...] = ()

    @property
    def breakglass(self) -> bool:
        """Whether a breakglass annotation asks to bypass enforcement (value "true")."""
        return any(self.annotations.get(a, "").lower() == "true" for a in BREAKGLASS_ANNOTATIONS)


def pod_spec_path(kind: str) -> tuple[str, ...]:
    """Where ``kind`` keeps its pod spec (``("spec", "template", "spec")`` for a Deployment)."""
    path = _POD_SPEC_PATH.get(kind)
    if path is None:
        raise InvalidArgument(
            f"kind {kind!r} carries no pod spec this webhook knows: expected one of "
            + ", ".join(sorted(SUPPORTED_KINDS))
        )
    return path


def _dig(obj: Any, path: tuple[str, ...], kind: str) -> dict[str, Any]:
    here: Any = obj
    walked: list[str] = []
    for key in path:
        walked.append(key)
        here = here.get(key) if isinstance(here, dict) else None
        if not isinstance(here, dict):
            raise InvalidArgument(
                f"{kind} has no object at {'.'.join(walked)}: expected a pod spec at "
                f"{'.'.join(path)}"
            )
    found: dict[str, Any] = here
    return found


def _annotations(meta: Any) -> dict[str, str]:
    if not isinstance(meta, dict):
        return {}
    raw = meta.get("annotations") or {}
    if not isinstance(raw, dict):
        raise InvalidArgument("metadata.annotations must be a mapping of strings")
    return {str(k): str(v) for k, v in raw.items()}


_DNS_SUBDOMAIN = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)


def _volume_images(spec: dict[str, Any], where: str) -> list[ContainerImage]:
    """Images mounted as volumes (``volumes[].image.reference``, Kubernetes 1.31+).

    The kubelet pulls them like container images, so they are judged like them.
    """
    volumes = spec.get("volumes") or []
    if not isinstance(volumes, list):
        raise InvalidArgument(f"{where}.volumes must be a list of volumes")
    found: list[ContainerImage] = []
    for i, volume in enumerate(volumes):
        if not isinstance(volume, dict) or "image" not in volume:
            continue
        source = volume["image"]
        reference = source.get("reference") if isinstance(source, dict) else None
        if not isinstance(reference, str) or not reference.strip():
            raise InvalidArgument(
                f"{where}.volumes[{i}].image.reference is missing: an image volume needs the "
                "image it mounts"
            )
        found.append(ContainerImage(f"volumes[{i}] ({volume.get('name', '')})", reference.strip()))
    return found


def workload_from_object(obj: Any, *, namespace: str = "") -> Workload:
    """Read a Kubernetes object; InvalidArgument if it is not a workload this judge knows."""
    if not isinstance(obj, dict):
        raise InvalidArgument("the Kubernetes object must be a JSON object")
    kind = obj.get("kind")
    if kind not in _POD_SPEC_PATH:
        raise InvalidArgument(
            f"kind {kind!r} carries no pod spec this webhook knows: expected one of "
            + ", ".join(sorted(SUPPORTED_KINDS))
        )
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    path = _POD_SPEC_PATH[kind]
    spec = _dig(obj, path, kind)
    annotations = _annotations(meta)
    if len(path) > 1:
        # A template's own annotations end up on the pods; breakglass may be set on either.
        template = _dig(obj, path[:-1], kind)
        annotations = {**_annotations(template.get("metadata")), **annotations}

    images: list[ContainerImage] = []
    for list_name in _CONTAINER_LISTS:
        containers = spec.get(list_name) or []
        if not isinstance(containers, list):
            raise InvalidArgument(f"{'.'.join(path)}.{list_name} must be a list of containers")
        for i, container in enumerate(containers):
            image = container.get("image") if isinstance(container, dict) else None
            if not isinstance(image, str) or not image.strip():
                raise InvalidArgument(
                    f"{'.'.join(path)}.{list_name}[{i}].image is missing: every container "
                    "needs an image"
                )
            cname = container.get("name", "")
            images.append(ContainerImage(f"{list_name}[{i}] ({cname})", image.strip()))
    if not images:
        raise InvalidArgument(f"{kind} has no containers at {'.'.join(path)}.containers")
    images += _volume_images(spec, ".".join(path))

    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if not isinstance(sa, str) or not _DNS_SUBDOMAIN.fullmatch(sa):
        # The name selects a namespace:name rule; one the API server would never accept
        # (``Default``, ``a/b``, 300 characters) must not select or dodge a rule.
        raise InvalidArgument(
            f"{'.'.join(path)}.serviceAccountName {str(sa)[:80]!r} is not a valid Kubernetes "
            "name: expected at most 253 lowercase letters, digits, '-' and '.', starting and "
            "ending with a letter or digit"
        )
    return Workload(
        kind=kind,
        name=str(meta.get("name") or meta.get("generateName") or ""),
        namespace=str(meta.get("namespace") or namespace or "default"),
        service_account=str(sa),
        images=tuple(images),
        annotations=annotations,
        image_pull_secrets=_pull_secrets(spec, ".".join(path)),
    )


def _pull_secrets(spec: dict[str, Any], where: str) -> tuple[str, ...]:
    raw = spec.get("imagePullSecrets") or []
    if not isinstance(raw, list):
        raise InvalidArgument(f"{where}.imagePullSecrets must be a list of {{name: …}}")
    names: list[str] = []
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not _DNS_SUBDOMAIN.fullmatch(name):
            raise InvalidArgument(
                f"{where}.imagePullSecrets[{i}].name must be a Secret name (lowercase letters, "
                "digits, '-' and '.')"
            )
        names.append(name)
    return tuple(dict.fromkeys(names))
