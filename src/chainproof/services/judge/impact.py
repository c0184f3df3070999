"""Reverse impact: which running workloads a vulnerability, a package, a key, an attestor or
an image touches, and whether the policy denies them now.

Owns the question ``GET /v1/projects/{p}/impact`` and ``chainproof impact`` ask. The answer
is a page of *affected images* (in code point order, keyset-paged by image), each with its
running workloads in the project's clusters (cluster, namespace, workload, container, service
account, pods, since when) and the verdict the judge gives each workload under the current
policy — judged by :class:`~chainproof.services.judge.judging.Judge` itself, as an admission
of that workload would be.

What makes an image affected, by question:

* ``cve``: an unresolved finding filed under the ID or naming it as an alias (a CVE finds the
  scanner's GHSA findings, a GHSA finds CVE findings that list it); a finding a VEX statement
  resolves — read as the judge reads it, scope included — does not count (the image is listed
  under ``resolvedByVex`` instead);
* ``purl``: a PACKAGE occurrence (an SBOM's package) of that package, any version when the
  purl names none;
* ``key``: an attestation that verifies under that key ID, of an attestor of the project;
* ``attestor``: an attestation that attestor accepts (verified under one of its keys);
* ``image``: the image itself (a digest).

Bounds: a page reads at most :data:`MAX_CANDIDATES` candidate images and
:data:`MAX_ROWS` inventory rows. A page that stops early because of the first says so with a
next page token (``complete: false``); more running rows than the second for one page is
refused, naming the bound (ask with a smaller ``pageSize``). Nothing is ever cut silently.

Only the project's clusters are read (``runtime.clusters[].project``, default the admission
project; see :func:`~chainproof.services.judge.runtime_setup.project_clusters`): a project
without clusters has no running workloads, never everyone's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chainproof.domain.filters import Compare, FilterColumn
from chainproof.domain.images import ImageReference, canonical_resource, parse_image_reference
from chainproof.domain.inventory import RunningContainer
from chainproof.domain.messages import to_json
from chainproof.domain.names import parse_attestor_name, parse_note_name, validate_project_id
from chainproof.domain.pagination import ListScope, PageTokenCodec
from chainproof.domain.timestamps import rfc3339
from chainproof.errors import InvalidArgument, NotFound, PayloadTooLarge
from chainproof.ingest.facts import purl_of_package
from chainproof.ingest.purls import BadPurl, canonical_purl, note_id_for, purl_matches
from chainproof.policy import AdmissionRequest, Attestor, ImageEvidence
from chainproof.policy.checks.vulnerabilities import resolving_statement
from chainproof.services.common import Clock, utc_now
from chainproof.services.judge.evidence import EvidenceGatherer
from chainproof.services.judge.judging import Judge
from chainproof.services.judge.resources import JudgeResources
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import InventoryQuery

QUESTIONS = ("cve", "purl", "key", "attestor", "image")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500
#: Candidate images one page reads (images with the finding, package or attestation, running
#: or not); past it the page ends with a token.
MAX_CANDIDATES = 5_000
#: Running containers one page may list.
MAX_ROWS = 5_000
#: PACKAGE occurrences of one package read for a purl with a version.
MAX_PACKAGE_OCCURRENCES = 100_000
#: Attestors of a project read for a key question.
MAX_ATTESTORS = 1_000
_ID = re.compile(r"[A-Za-z][A-Za-z0-9._:-]{1,127}")
_BATCH = 200


@dataclass(frozen=True, slots=True)
class ImpactQuery:
    question: str  # one of QUESTIONS
    value: str

    @classmethod
    def of(cls, given: Mapping[str, str | None]) -> ImpactQuery:
        asked = [(q, v) for q, v in given.items() if v]
        if len(asked) != 1 or asked[0][0] not in QUESTIONS:
            raise InvalidArgument(
                "ask exactly one of cve=, purl=, key=, attestor=, image= (e.g. ?cve=CVE-2024-3094)"
            )
        return cls(*asked[0])


@dataclass(frozen=True, slots=True)
class AffectedWorkload:
    cluster: str
    namespace: str
    workload_kind: str
    workload_name: str
    container: str
    service_account: str
    pods: int
    since: datetime
    verdict: str  # allowed | denied | dry-run-would-deny
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "namespace": self.namespace,
            "workload": f"{self.workload_kind}/{self.workload_name}",
            "container": self.container,
            "serviceAccount": self.service_account,
            "pods": self.pods,
            "since": rfc3339(self.since),
            "verdict": self.verdict,
            "denied": self.verdict == "denied",
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True, slots=True)
class AffectedImage:
    image: str
    #: What ties it to the question: finding or attestation occurrences, package purls.
    because: tuple[str, ...]
    workloads: tuple[AffectedWorkload, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "because": list(self.because),
            "workloads": [w.to_dict() for w in self.workloads],
        }


@dataclass(frozen=True, slots=True)
class ImpactPage:
    query: ImpactQuery
    images: tuple[AffectedImage, ...]
    #: Running images with the finding that a VEX statement resolves: image → statement.
    resolved_by_vex: Mapping[str, str] = field(default_factory=dict)
    #: Candidates read on this page that run nowhere in the project's clusters.
    not_running: int = 0
    next_page_token: str = ""
    clusters: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.next_page_token

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": {self.query.question: self.query.value},
            "clusters": list(self.clusters),
            "images": [i.to_dict() for i in self.images],
            "affectedWorkloads": sum(len(i.workloads) for i in self.images),
            "deniedWorkloads": sum(
                1 for i in self.images for w in i.workloads if w.verdict == "denied"
            ),
            "resolvedByVex": [
                {"image": k, "statement": v} for k, v in sorted(self.resolved_by_vex.items())
            ],
            "notRunning": self.not_running,
            "complete": self.complete,
            "nextPageToken": self.next_page_token,
        }


@dataclass(slots=True)
class _Plan:
    """How one question finds candidates and confirms them."""

    attestors: dict[str, Attestor] = field(default_factory=dict)
    notes: tuple[tuple[str, str], ...] = ()
    ids: tuple[str, ...] = ()
    purl: str = ""


def _page_size(requested: int | None) -> int:
    if requested is None or requested == 0:
        return DEFAULT_PAGE_SIZE
    if requested < 0:
        raise InvalidArgument(f"pageSize {requested} is negative: expected 1 to {MAX_PAGE_SIZE}")
    return min(requested, MAX_PAGE_SIZE)


class ImpactService:
    def __init__(
        self,
        store: MetadataStore,
        judge: Judge,
        resources: JudgeResources,
        gatherer: EvidenceGatherer,
        clusters: Callable[[str], Sequence[str]],
        tokens: PageTokenCodec,
        clock: Clock = utc_now,
    ) -> None:
        """``clusters(project)`` names the project's inventory clusters."""
        self._store = store
        self._judge = judge
        self._resources = resources
        self._gatherer = gatherer
        self._clusters = clusters
        self._tokens = tokens
        self._clock = clock

    async def impact(
        self, project: str, query: ImpactQuery, page_size: int | None = None, page_token: str = ""
    ) -> ImpactPage:
        validate_project_id(project, field="project")
        size = _page_size(page_size)
        plan = await self._plan(project, query)
        scope = ListScope("impact", f"projects/{project}", f"{query.question}={query.value}")
        after = self._tokens.decode(scope, page_token) if page_token else None
        clusters: tuple[str, ...] = tuple(self._clusters(project))
        now = self._clock()
        affected: list[AffectedImage] = []
        vex: dict[str, str] = {}
        not_running = read = 0
        last = after
        done = False  # nothing is left after ``last``
        while len(affected) < size and read < MAX_CANDIDATES:
            # Twice the room left: most candidates of a question are affected and running, and
            # every candidate read costs an inventory read; the loop asks again if not.
            want = min(_BATCH, MAX_CANDIDATES - read, max(2 * (size - len(affected)), 10))
            candidates = await self._candidates(project, query, plan, last, want)
            read += len(candidates)
            if not candidates:
                done = True
                break
            rows = await self._running(clusters, candidates)
            not_running += sum(1 for c in candidates if c not in rows)
            # Confirm and judge only as many running candidates as the page still has room
            # for (most candidates of a CVE are affected): a slice at a time, in order.
            start = 0
            while start < len(candidates) and len(affected) < size:
                room = size - len(affected)
                end, chosen = start, list[str]()
                while end < len(candidates) and len(chosen) < room:
                    if candidates[end] in rows:
                        chosen.append(candidates[end])
                    end += 1
                affected += await self._slice(project, query, plan, chosen, rows, now, vex)
                last, start = candidates[end - 1], end
            if len(candidates) < want and start == len(candidates):
                done = True
                break
        token = "" if done or last is None else self._tokens.encode(scope, last)
        return ImpactPage(query, tuple(affected), vex, not_running, token, clusters)

    # ------------------------------------------------------------------ the question

    async def _plan(self, project: str, query: ImpactQuery) -> _Plan:
        q, value = query.question, query.value.strip()
        if q == "cve":
            if not _ID.fullmatch(value):
                raise InvalidArgument(
                    f"cve {value!r} is not a vulnerability ID (CVE-2024-3094, GHSA-…, GO-…)"
                )
            return _Plan(ids=(value.upper(),))
        if q == "purl":
            try:
                purl = canonical_purl(value)
            except BadPurl as exc:
                raise InvalidArgument(f"purl: {exc}") from None
            base = purl.split("?", 1)[0].split("#", 1)[0].split("@", 1)[0]
            return _Plan(notes=((project, note_id_for("pkg-", base)),), purl=purl)
        if q == "image":
            ref = parse_image_reference(value)
            if ref.digest is None:
                raise InvalidArgument(
                    f"image {value!r} names no digest: the inventory knows images by the digest "
                    "that runs (registry/repository@sha256:…)"
                )
            return _Plan()
        if q == "attestor":
            parsed = parse_attestor_name(value)
            if parsed.project != project:
                raise InvalidArgument(
                    f"attestor {value} is not of projects/{project}: ask in its own project"
                )
            attestors, unusable = await self._resources.project_attestors(project, MAX_ATTESTORS)
            if value in unusable:
                raise InvalidArgument(f"attestor {value} cannot be read: {unusable[value]}")
            if value not in attestors:
                raise NotFound(f"attestor {value} does not exist")
            return _Plan(attestors={value: attestors[value]}, notes=(_note(attestors[value]),))
        # key
        if not value or len(value) > 1024:
            raise InvalidArgument("key must be a key ID of 1 to 1024 characters")
        attestors, _ = await self._resources.project_attestors(project, MAX_ATTESTORS)
        holding = {n: a for n, a in attestors.items() if _holds(a, value)}
        if not holding:
            raise NotFound(
                f"no attestor of projects/{project} holds a key with ID {value!r} (PGP keys "
                "are named by their fingerprint)"
            )
        return _Plan(
            attestors=holding, notes=tuple(dict.fromkeys(_note(a) for a in holding.values()))
        )

    async def _candidates(
        self, project: str, query: ImpactQuery, plan: _Plan, after: str | None, limit: int
    ) -> list[str]:
        if query.question == "image":
            image = canonical_resource(query.value)
            return [image] if after is None or image > after else []
        async with self._store.session(readonly=True) as s:
            if query.question == "cve":
                return await s.occurrences.vulnerable_resources(project, plan.ids, after, limit)
            found: set[str] = set()
            for note_project, note_id in plan.notes:
                found.update(
                    await s.occurrences.note_resources(project, note_project, note_id, after, limit)
                )
        return sorted(found)[:limit]

    async def _confirm(
        self,
        project: str,
        query: ImpactQuery,
        plan: _Plan,
        images: Sequence[str],
        now: datetime,
        vex: dict[str, str],
    ) -> dict[str, tuple[str, ...]]:
        """Of running candidate ``images``, those the question really touches, and why (a CVE
        is confirmed on the judge's evidence instead: see :meth:`_slice`)."""
        if query.question == "image":
            return {i: ("the image itself",) for i in images}
        if query.question == "purl":
            return await self._with_package(project, plan, images)
        refs = [parse_image_reference(i) for i in images]
        evidence = await self._gatherer.gather(refs, plan.attestors, (project,), now)
        out: dict[str, tuple[str, ...]] = {}
        for ref in refs:
            why = _attested(evidence.for_image(ref), plan, query)
            if why:
                out[ref.canonical] = why
        return out

    async def _with_package(
        self, project: str, plan: _Plan, images: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        wanted = set(images)
        out: dict[str, set[str]] = {}
        note_project, note_id = plan.notes[0]
        async with self._store.session(readonly=True) as s:
            for image in images:
                where = Compare(FilterColumn.RESOURCE, image)
                rows = await s.occurrences.page_of_note(note_project, note_id, where, None, 1000)
                if len(rows) >= 1000:
                    raise PayloadTooLarge(
                        f"{image} has more than 1000 occurrences of one package; chainproof "
                        "reads at most that many"
                    )
                for r in rows:
                    if r.project != project or r.resource not in wanted or r.kind != "PACKAGE":
                        continue
                    purl = purl_of_package(to_json(r.occurrence).get("package", {}))
                    if purl and purl_matches(plan.purl, purl):
                        out.setdefault(r.resource, set()).add(purl)
        return {k: tuple(sorted(v)) for k, v in out.items()}

    # ------------------------------------------------------------------ where and verdicts

    async def _running(
        self, clusters: tuple[str, ...], images: Sequence[str]
    ) -> dict[str, list[RunningContainer]]:
        if not clusters:
            return {}  # no cluster is the project's: nothing of anyone else's
        async with self._store.session(readonly=True) as s:
            rows = await s.inventory.list_rows(
                InventoryQuery(clusters=clusters, images=tuple(images)), MAX_ROWS + 1
            )
        if len(rows) > MAX_ROWS:
            raise PayloadTooLarge(
                f"more than {MAX_ROWS} running containers run these images; ask with a "
                "smaller pageSize"
            )
        out: dict[str, list[RunningContainer]] = {}
        for r in rows:
            out.setdefault(r.image, []).append(r)
        return out

    async def _slice(
        self,
        project: str,
        query: ImpactQuery,
        plan: _Plan,
        images: Sequence[str],
        rows: Mapping[str, Sequence[RunningContainer]],
        now: datetime,
        vex: dict[str, str],
    ) -> list[AffectedImage]:
        """The affected ones among running ``images``, in order, each with its workloads
        judged. For a CVE the judge's own evidence (read once, for the verdicts) also says
        which findings VEX resolves; other questions confirm first and judge what is left."""
        if not images:
            return []
        if query.question == "cve":
            workloads, evidence = await self._judged(project, images, rows, now)
            because = {}
            for image in images:
                ref = parse_image_reference(image)
                found = evidence.get(image, ImageEvidence())
                why = _unresolved(found, ref, plan.ids[0], vex)
                if why:
                    because[image] = why
        else:
            because = await self._confirm(project, query, plan, images, now, vex)
            workloads, _ = await self._judged(
                project, [i for i in images if i in because], rows, now
            )
        return [AffectedImage(i, because[i], workloads[i]) for i in images if i in because]

    async def _judged(
        self,
        project: str,
        images: Sequence[str],
        rows: Mapping[str, Sequence[RunningContainer]],
        now: datetime,
    ) -> tuple[dict[str, tuple[AffectedWorkload, ...]], dict[str, ImageEvidence]]:
        """Every workload running ``images``, judged as an admission of it would be (one
        request per image and place: cluster, namespace, service account), all by one call
        of the judge, which reads each image's evidence once."""
        groups: dict[tuple[str, str, str, str, str, str, str], list[RunningContainer]] = {}
        for image in images:
            for r in rows[image]:
                key = (
                    image,
                    r.cluster,
                    r.namespace,
                    r.workload_kind,
                    r.workload_name,
                    r.container,
                    r.service_account,
                )
                groups.setdefault(key, []).append(r)
        places = list(dict.fromkeys((k[0], k[1], k[2], k[6]) for k in groups))
        requests = [
            AdmissionRequest((image,), cluster or None, namespace or None, account or None)
            for image, cluster, namespace, account in places
        ]
        decisions, evidence = await self._judge.evaluate_all(project, requests, now=now)
        verdict = dict(zip(places, decisions, strict=True))
        out: dict[str, list[AffectedWorkload]] = {i: [] for i in images}
        for key, members in sorted(groups.items()):
            image, cluster, namespace, kind, name, container, account = key
            decision = verdict[(image, cluster, namespace, account)]
            out[image].append(
                AffectedWorkload(
                    cluster=cluster,
                    namespace=namespace,
                    workload_kind=kind,
                    workload_name=name,
                    container=container,
                    service_account=account,
                    pods=len({m.pod for m in members}),
                    since=min(m.since for m in members),
                    verdict=decision.outcome.value,
                    reasons=decision.denial_reasons(),
                )
            )
        return {i: tuple(w) for i, w in out.items()}, evidence


def _note(attestor: Attestor) -> tuple[str, str]:
    parsed = parse_note_name(attestor.note_reference)
    return parsed.project, parsed.note_id


def _holds(attestor: Attestor, key_id: str) -> bool:
    for entry, loaded in attestor.loaded_keys()[0]:
        if entry.id == key_id or (loaded is not None and loaded.key_id == key_id):
            return True
    return False


def _unresolved(
    evidence: ImageEvidence, ref: ImageReference, wanted: str, vex: dict[str, str]
) -> tuple[str, ...]:
    hits: list[str] = []
    for finding in evidence.vulnerabilities:
        ids = {finding.cve.rsplit("/", 1)[-1].upper(), *(a.upper() for a in finding.aliases)}
        if wanted not in ids:
            continue
        statement = resolving_statement(evidence, finding, ref)
        if statement is not None:
            vex.setdefault(ref.canonical, statement.source)
            continue
        hits.append(finding.occurrence or finding.cve)
    if hits:
        vex.pop(ref.canonical, None)
    return tuple(dict.fromkeys(hits))


def _attested(evidence: ImageEvidence, plan: _Plan, query: ImpactQuery) -> tuple[str, ...]:
    hits = [
        f"{a.occurrence} (key {a.key_id})"
        for a in evidence.attestations
        if a.attestor in plan.attestors and (query.question != "key" or a.key_id == query.value)
    ]
    return tuple(dict.fromkeys(hits))
