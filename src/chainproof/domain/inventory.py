"""The workload inventory: which container runs which image digest, where, since when.

Owns the pure part of knowing what runs: reading a Pod object into one observation per
container (cluster, namespace, owning workload, pod, container, the image as written and the
digest the kubelet reports in ``status.containerStatuses[].imageID``), resolving the owner
chain from a pod up to its Deployment, StatefulSet, CronJob, … and comparing what a watcher
sees with what the inventory holds open (``reconcile``). Talking to an API server (list,
watch, fetching owners) lives in ``sources.kubernetes``; storing rows in the store.

A container's row is open while the pod exists and has not finished; it closes (``until``)
when the pod is deleted, succeeds or fails, or when a relist no longer shows it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from chainproof.domain.breakglass import DEFAULT_MAXIMUM, read_window
from chainproof.domain.images import parse_image_reference
from chainproof.domain.timestamps import parse_rfc3339
from chainproof.domain.workloads import BREAKGLASS_ANNOTATIONS
from chainproof.errors import InvalidArgument

#: Owner kinds whose own owner is worth looking up: a ReplicaSet is usually a Deployment's,
#: a Job a CronJob's. Other owners (StatefulSet, DaemonSet, custom resources) are the top.
LOOKUP_OWNER_KINDS = frozenset({"ReplicaSet", "Job", "ReplicationController"})
#: How far up an owner chain is followed; deeper chains stop at the last owner reached.
MAX_OWNER_DEPTH = 4
#: How an imageID may start, by container runtime (Docker's shim, CRI-O, containerd, …).
_IMAGE_ID_SCHEMES = ("docker-pullable://", "docker://", "containerd://", "cri-o://")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_CLUSTER_NAME = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?")
_FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


def validate_cluster_name(name: str) -> str:
    """Clusters are named by the operator; the name keys every inventory row."""
    if not _CLUSTER_NAME.fullmatch(name):
        raise InvalidArgument(
            f"cluster name {name!r} is not valid: expected 1-63 lowercase letters, digits, "
            "'.', '_' or '-', starting and ending with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """One ``metadata.ownerReferences`` entry (the controller's)."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class WorkloadRef:
    """The top of a pod's owner chain; a pod nobody owns is its own workload."""

    kind: str
    name: str


def controller_of(metadata: Mapping[str, Any]) -> OwnerRef | None:
    """The owner marked ``controller: true`` (Kubernetes allows at most one)."""
    refs = metadata.get("ownerReferences") or []
    if not isinstance(refs, list):
        return None
    for ref in refs:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return OwnerRef(
                str(ref.get("kind", "")), str(ref.get("name", "")), str(ref.get("uid", ""))
            )
    return None


def resolve_workload(
    pod_name: str,
    first: OwnerRef | None,
    owner_of: Callable[[OwnerRef], OwnerRef | None],
) -> WorkloadRef:
    """Follow the controller chain from a pod's owner up, asking ``owner_of`` only for kinds
    in LOOKUP_OWNER_KINDS. ``owner_of`` answers from what the caller has fetched (None when the
    owner has no controller or could not be read), so this stays pure."""
    if first is None:
        return WorkloadRef("Pod", pod_name)
    here = first
    for _ in range(MAX_OWNER_DEPTH):
        if here.kind not in LOOKUP_OWNER_KINDS:
            break
        parent = owner_of(here)
        if parent is None:
            break
        here = parent
    return WorkloadRef(here.kind, here.name)


def running_digest(image_id: str) -> str | None:
    """The manifest digest in an ``imageID``, or None when it names none.

    ``docker-pullable://nginx@sha256:…`` and ``docker.io/library/nginx@sha256:…`` carry the
    repository digest. A bare ``sha256:…`` is the local image configuration's ID (an image
    built or loaded on the node), which no registry evidence can name, so it is not a digest
    here.
    """
    text = image_id.strip()
    for scheme in _IMAGE_ID_SCHEMES:
        if text.startswith(scheme):
            text = text[len(scheme) :]
            break
    if "@" not in text:
        return None
    digest = text.rsplit("@", 1)[1].lower()
    return digest if _DIGEST.fullmatch(digest) else None


@dataclass(frozen=True, slots=True)
class ContainerKey:
    cluster: str
    namespace: str
    pod: str
    container: str


@dataclass(frozen=True, slots=True)
class RunningContainer:
    """One inventory row. ``image`` is the canonical identity evidence is matched on:
    ``registry/repository@sha256:…`` built from the workload's image name and the digest
    actually running, or the reference as written when no digest is known yet."""

    cluster: str
    namespace: str
    workload_kind: str
    workload_name: str
    pod: str
    pod_uid: str
    container: str
    service_account: str
    #: The image as written in the pod spec.
    image_spec: str
    #: ``status.containerStatuses[].imageID`` as reported (empty until the kubelet says).
    image_id: str
    #: The running manifest digest, when known.
    digest: str | None
    image: str
    since: datetime
    until: datetime | None = None
    #: ``watcher`` or ``admission``: who told the inventory.
    source: str = "watcher"
    #: Until when the pod's breakglass annotations excuse it from the policy (None: no
    #: breakglass asked, or one that cannot be honoured); see domain.breakglass.
    breakglass_until: datetime | None = None

    @property
    def key(self) -> ContainerKey:
        return ContainerKey(self.cluster, self.namespace, self.pod, self.container)

    def same_facts(self, other: RunningContainer) -> bool:
        """Whether two observations say the same (times and source aside)."""
        return (
            self.pod_uid == other.pod_uid
            and self.workload_kind == other.workload_kind
            and self.workload_name == other.workload_name
            and self.service_account == other.service_account
            and self.image_spec == other.image_spec
            and self.image_id == other.image_id
            and self.image == other.image
            and self.breakglass_until == other.breakglass_until
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "namespace": self.namespace,
            "workload": {"kind": self.workload_kind, "name": self.workload_name},
            "pod": self.pod,
            "podUid": self.pod_uid,
            "container": self.container,
            "serviceAccount": self.service_account,
            "imageSpec": self.image_spec,
            "imageId": self.image_id,
            "digest": self.digest,
            "image": self.image,
            "since": self.since.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "source": self.source,
            "breakglassUntil": self.breakglass_until.isoformat() if self.breakglass_until else None,
        }


def canonical_running_image(image_spec: str, digest: str | None) -> str:
    """The identity of what runs: the spec's repository with the running digest. The
    repository in an imageID may be any of the names the node pulled the image by, while
    evidence was judged for the name in the spec, so the spec's name wins."""
    try:
        ref = parse_image_reference(image_spec)
    except InvalidArgument:
        return image_spec
    if digest:
        return f"{ref.name}@{digest}"
    return ref.canonical


def observe_admitted_pod(
    cluster: str,
    pod: Mapping[str, Any],
    now: datetime,
    *,
    breakglass_max: timedelta = DEFAULT_MAXIMUM,
) -> list[RunningContainer]:
    """Rows for a Pod the admission webhook admitted, before any watcher has seen it: the
    owner is the pod's own controller (a watcher follows the chain up later). Nothing runs
    yet, so ``digest`` is unknown; ``image`` is the spec's reference, pinned by digest when
    the spec (or the mutating webhook) pinned it."""
    meta = pod.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        return []  # no name yet (a mutating call, or generateName): nothing to key a row on
    first = controller_of(meta)
    workload = WorkloadRef(first.kind, first.name) if first else WorkloadRef("Pod", meta["name"])
    rows = observe_pod(cluster, pod, workload, now, breakglass_max=breakglass_max, admitted=True)
    return [replace(r, source="admission") for r in rows]


def pod_is_running(pod: Mapping[str, Any]) -> bool:
    """Whether a pod can still run containers: it exists and has not finished."""
    status = pod.get("status") if isinstance(pod.get("status"), dict) else {}
    assert isinstance(status, dict)
    return status.get("phase") not in _FINISHED_PHASES


def breakglass_until(
    meta: Mapping[str, Any], now: datetime, maximum: timedelta, *, admitted: bool = False
) -> datetime | None:
    """Until when a pod's breakglass excuses it: None when it asks for none. The window
    starts at the pod's ``creationTimestamp`` (set by the API server; ``now`` when missing,
    unreadable or in the future, and always ``now`` for a pod being admitted), so editing the
    annotations of a running pod cannot stretch it past that start plus ``maximum``."""
    raw = meta.get("annotations")
    annotations = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    if not any(annotations.get(a, "").lower() == "true" for a in BREAKGLASS_ANNOTATIONS):
        return None
    start = now
    created = meta.get("creationTimestamp")
    if not admitted and isinstance(created, str):
        try:
            start = min(parse_rfc3339(created), now)
        except (InvalidArgument, ValueError, TypeError):
            start = now
    window = read_window(annotations, start=start, now=start, maximum=maximum)
    # An unreadable expiry honours nothing: the pod is judged like any other.
    return window.expires if window.usable else None


def observe_pod(
    cluster: str,
    pod: Mapping[str, Any],
    workload: WorkloadRef,
    now: datetime,
    *,
    breakglass_max: timedelta = DEFAULT_MAXIMUM,
    admitted: bool = False,
) -> list[RunningContainer]:
    """One row per container of a pod that can still run (none for a finished pod).

    Init containers are left out: they have finished by the time the pod runs, and they were
    judged at admission already. Ephemeral (debug) containers count while they exist.
    """
    meta = pod.get("metadata")
    spec = pod.get("spec")
    if not isinstance(meta, dict) or not isinstance(spec, dict):
        raise InvalidArgument("a Pod object needs metadata and spec")
    if not pod_is_running(pod):
        return []
    status = pod.get("status") if isinstance(pod.get("status"), dict) else {}
    assert isinstance(status, dict)
    reported: dict[str, str] = {}
    for list_name in ("containerStatuses", "ephemeralContainerStatuses"):
        for st in status.get(list_name) or []:
            if isinstance(st, dict) and st.get("name"):
                reported[str(st["name"])] = str(st.get("imageID") or "")
    rows: list[RunningContainer] = []
    excused_until = breakglass_until(meta, now, breakglass_max, admitted=admitted)
    sa = str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
    for list_name in ("containers", "ephemeralContainers"):
        for c in spec.get(list_name) or []:
            if not isinstance(c, dict) or not c.get("name"):
                continue
            name = str(c["name"])
            image_spec = str(c.get("image") or "")
            image_id = reported.get(name, "")
            digest = running_digest(image_id) if image_id else None
            rows.append(
                RunningContainer(
                    cluster=cluster,
                    namespace=str(meta.get("namespace") or "default"),
                    workload_kind=workload.kind,
                    workload_name=workload.name,
                    pod=str(meta.get("name") or ""),
                    pod_uid=str(meta.get("uid") or ""),
                    container=name,
                    service_account=sa,
                    image_spec=image_spec,
                    image_id=image_id,
                    digest=digest,
                    image=canonical_running_image(image_spec, digest),
                    since=now,
                    breakglass_until=excused_until,
                )
            )
    return rows


@dataclass(frozen=True, slots=True)
class InventoryChanges:
    """What to write: rows to open, rows whose facts changed (kept ``since``), rows to close."""

    opened: tuple[RunningContainer, ...] = ()
    changed: tuple[RunningContainer, ...] = ()
    closed: tuple[RunningContainer, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.opened or self.changed or self.closed)


def reconcile(
    open_rows: Iterable[RunningContainer],
    observed: Iterable[RunningContainer],
    now: datetime,
) -> InventoryChanges:
    """Compare the open rows in a scope (one pod, or a whole cluster after a relist) with
    what was observed in that same scope.

    A container that runs a different pod UID or image than its open row is a new life: the
    old row closes and a new one opens, so ``since`` always means "this image, in this pod,
    since". Anything else that changed (an imageID appearing) updates the row in place. A
    pod UID not known yet (empty: the row came from an admission request made before the
    API server assigned one) is not a different life.
    """
    current = {row.key: row for row in open_rows}
    seen = {row.key: row for row in observed}
    opened: list[RunningContainer] = []
    changed: list[RunningContainer] = []
    closed: list[RunningContainer] = []
    for key, row in seen.items():
        old = current.get(key)
        if old is None:
            opened.append(row)
        elif (old.pod_uid and row.pod_uid and old.pod_uid != row.pod_uid) or (
            old.digest is not None and row.digest is not None and old.digest != row.digest
        ):
            closed.append(replace(old, until=now))
            opened.append(row)
        elif not old.same_facts(row) or old.source != row.source:
            # Facts learnt (an imageID, the owner chain), or a row the admission webhook
            # opened that a watcher now confirms: the same life, updated in place.
            changed.append(replace(row, since=old.since))
    for key, old in current.items():
        if key not in seen:
            closed.append(replace(old, until=now))
    return InventoryChanges(tuple(opened), tuple(changed), tuple(closed))
