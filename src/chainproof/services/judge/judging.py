"""Judging a deployment: load the project's policy and attestors, gather verified evidence for
each image, and evaluate (the decision log is :mod:`chainproof.services.judge.decision_log`).

The evaluation itself is pure (:func:`chainproof.policy.evaluate`); this module only fetches
what it needs and passes the time in. A project without a policy denies every image: an
unconfigured judge must not silently admit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.domain.names import parse_project_name
from chainproof.errors import InvalidArgument
from chainproof.policy import (
    AdmissionRequest,
    Attestor,
    Decision,
    Evidence,
    ImageEvidence,
    Policy,
    RequirementResult,
    RuleSelection,
    evaluate,
)
from chainproof.policy.checks.image_index import every_platform_attestors
from chainproof.policy.evaluate import evidence_rule
from chainproof.services.common import Clock, utc_now
from chainproof.services.judge.evidence import (
    EvidenceGatherer,
    EvidenceNeeds,
    attestor_fingerprint,
)
from chainproof.services.judge.resources import JudgeResources
from chainproof.services.scribe.changes import ChangeFeed

log = structlog.get_logger("chainproof.judge")
#: evaluate_all: images per evidence read, and reads at once.
_CHUNK = 8
_PARALLEL_READS = 4
T = TypeVar("T")


def no_policy_decision(project: str, request: AdmissionRequest, now: datetime) -> Decision:
    reason = (
        f"projects/{project} has no policy, so nothing may run: set one with "
        f"PUT /v1/projects/{project}/policy (or `chainproof policy set`)"
    )
    return Decision.deny_all(
        request.images,
        RuleSelection("no-policy", None, None, None, "no policy is configured"),
        RequirementResult("policy", "a policy", False, reason),
        now,
        f"projects/{project}/policy",
    )


def _parse_all(texts: Sequence[str]) -> list[ImageReference]:
    parsed: list[ImageReference] = []
    for text in texts:
        # Unparseable references are judged (and refused) by the evaluator with a reason.
        with contextlib.suppress(InvalidArgument):
            parsed.append(parse_image_reference(text))
    return parsed


def _needs(config: _Config, request: AdmissionRequest, image: ImageReference) -> EvidenceNeeds:
    """What the rule judging ``image`` reads beyond the scribe: its registry-sourced
    attestors, and whose evidence each platform of an index must carry. Nothing when no rule
    counts evidence for the image (allowlisted, ALWAYS_ALLOW…): the registry is not asked."""
    assert config.policy is not None
    rule = evidence_rule(config.policy, request, image)
    if rule is None:
        return EvidenceNeeds()
    trusted = [n for n in rule.trusted_attestors if n in config.attestors]
    registry = frozenset(n for n in trusted if config.attestors[n].evidence_source.reads_registry)
    platforms = every_platform_attestors(trusted, rule.checks.every_platform, config.attestors)
    return EvidenceNeeds(registry, frozenset(platforms))


def _evidence_key(
    config: _Config,
    projects: tuple[str, ...],
    image: ImageReference,
    needs: Mapping[str, EvidenceNeeds],
) -> tuple[str, ...]:
    return (config.fingerprint, *projects, image.canonical, needs[image.canonical].key)


@dataclass(frozen=True, slots=True)
class _Config:
    generation: int
    expires: datetime
    policy: Policy | None
    attestors: Mapping[str, Attestor]
    fingerprint: str
    unusable: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _CachedEvidence:
    generation: int
    version: int
    expires: datetime
    evidence: ImageEvidence


class Judge:
    """Evaluates a request against the stored policy of a project.

    With ``cache_ttl`` > 0 the policy, attestors and each image's verified evidence are kept
    between requests:

    * an entry is dropped as soon as this process sees its inputs change (an occurrence about
      the image; any note, attestor or policy: see ChangeFeed) — those misses are answered
      from the store before deciding;
    * an entry that has merely aged past ``cache_ttl`` (its inputs unchanged here, but another
      replica may have written) is refreshed in the background while it keeps serving, for at
      most one more ``cache_ttl``; past that it is a miss like any other;
    * concurrent misses for the same entry wait for one store read instead of each making one.
    """

    def __init__(
        self,
        resources: JudgeResources,
        gatherer: EvidenceGatherer,
        clock: Clock = utc_now,
        *,
        changes: ChangeFeed | None = None,
        cache_ttl: timedelta = timedelta(0),
    ) -> None:
        self._resources = resources
        self.gatherer = gatherer
        self._clock = clock
        self._changes = changes or ChangeFeed()
        self._ttl = cache_ttl
        self._configs: dict[str, _Config] = {}
        self._evidence: dict[tuple[str, ...], _CachedEvidence] = {}
        self._inflight: dict[tuple[str, ...], asyncio.Future[Any]] = {}
        self._refreshing: set[asyncio.Task[None]] = set()

    async def evaluate(
        self,
        project: str,
        request: AdmissionRequest,
        *,
        evidence_projects: Sequence[str] = (),
        now: datetime | None = None,
    ) -> Decision:
        parse_project_name(f"projects/{project}")
        now = now or self._clock()
        config = await self._config(project, now)
        if config.policy is None:
            return no_policy_decision(project, request, now)
        projects = tuple(evidence_projects or (project,))
        found: dict[str, ImageEvidence] = {}
        waiting: dict[str, asyncio.Future[Any]] = {}
        missing: list[ImageReference] = []
        needs: dict[str, EvidenceNeeds] = {}
        for image in dict.fromkeys(i for i in _parse_all(request.images) if i.digest):
            needs[image.canonical] = need = _needs(config, request, image)
            key = (config.fingerprint, *projects, image.canonical, need.key)
            entry = self._usable_evidence(key, image, now)
            if entry is not None:
                found[image.canonical] = entry.evidence
                if entry.expires <= now:
                    self._refresh_later(key, (image,), config, projects, needs)
            elif key in self._inflight:
                waiting[image.canonical] = self._inflight[key]
            else:
                missing.append(image)
        if missing:
            found.update(await self._gather_once(config, projects, missing, now, needs))
        for canonical, future in waiting.items():
            found[canonical] = await asyncio.shield(future)
        evidence = Evidence(
            images=found, attestors=dict(config.attestors), unusable_attestors=config.unusable
        )
        return evaluate(config.policy, request, evidence, now)

    async def evaluate_all(
        self,
        project: str,
        requests: Sequence[AdmissionRequest],
        *,
        now: datetime | None = None,
    ) -> tuple[list[Decision], dict[str, ImageEvidence]]:
        """Judge several requests of one project at one time, as :meth:`evaluate` judges
        each, reading each image's evidence once for all of them (what each image's rules
        read beyond the scribe, merged); also returns that evidence by canonical image.
        For callers that judge many workloads at once (reverse impact); no cache is read or
        filled."""
        parse_project_name(f"projects/{project}")
        now = now or self._clock()
        config = await self._config(project, now)
        if config.policy is None:
            return [no_policy_decision(project, r, now) for r in requests], {}
        merged: dict[str, EvidenceNeeds] = {}
        images: dict[str, ImageReference] = {}
        for request in requests:
            for image in _parse_all(request.images):
                if not image.digest:
                    continue
                need = _needs(config, request, image)
                have = merged.get(image.canonical)
                merged[image.canonical] = (
                    need
                    if have is None
                    else EvidenceNeeds(
                        have.registry | need.registry, have.every_platform | need.every_platform
                    )
                )
                images.setdefault(image.canonical, image)
        found: dict[str, ImageEvidence] = {}
        gate = asyncio.Semaphore(_PARALLEL_READS)

        async def read(chunk: list[ImageReference]) -> None:
            # Each chunk in a session of its own, a few at once: the reads are round trips.
            async with gate:
                gathered = await self.gatherer.gather(
                    chunk, config.attestors, (project,), now, needs=merged
                )
            found.update((i.canonical, gathered.for_image(i)) for i in chunk)

        unique = list(images.values())
        await asyncio.gather(*(read(unique[i : i + _CHUNK]) for i in range(0, len(unique), _CHUNK)))
        evidence = Evidence(
            images=found, attestors=dict(config.attestors), unusable_attestors=config.unusable
        )
        return [evaluate(config.policy, r, evidence, now) for r in requests], found

    async def prefetch(
        self,
        project: str,
        requests: Sequence[AdmissionRequest],
        *,
        now: datetime | None = None,
        chunk: int = 50,
        concurrency: int = 4,
    ) -> None:
        """Read the evidence of every image of ``requests`` into the cache, ``chunk`` images
        per store session, so that evaluating the requests one by one afterwards reads
        nothing more (the re-judging worker, judging thousands of pods at once); up to
        ``concurrency`` chunks are read at once, each in a session of its own. Only
        meaningful with a cache; each image keeps the needs its own request's rule gives it.
        Evidence that came back incomplete (a verification budget shared by the chunk) is not
        kept, so its request reads it again with a budget of its own."""
        if not self._ttl:
            return
        now = now or self._clock()
        config = await self._config(project, now)
        if config.policy is None:
            return
        projects = (project,)
        groups: dict[str, tuple[EvidenceNeeds, dict[str, ImageReference]]] = {}
        for request in requests:
            for image in _parse_all(request.images):
                if not image.digest:
                    continue
                need = _needs(config, request, image)
                key = (config.fingerprint, *projects, image.canonical, need.key)
                if self._usable_evidence(key, image, now) is not None or key in self._inflight:
                    continue
                groups.setdefault(need.key, (need, {}))[1].setdefault(image.canonical, image)
        parts: list[tuple[EvidenceNeeds, list[ImageReference]]] = []
        step = max(chunk, 1)
        for need, images in groups.values():
            todo = list(images.values())
            parts += [(need, todo[i : i + step]) for i in range(0, len(todo), step)]
        # A few chunks at a time, each in its own session: their round trips overlap.
        gate = asyncio.Semaphore(max(concurrency, 1))

        async def one(need: EvidenceNeeds, part: list[ImageReference]) -> None:
            async with gate:
                await self._gather_once(
                    config, projects, part, now, {i.canonical: need for i in part}
                )

        await asyncio.gather(*(one(need, part) for need, part in parts))

    # ----------------------------------------------------------------- configuration

    async def _config(self, project: str, now: datetime) -> _Config:
        cached = self._configs.get(project) if self._ttl else None
        if cached is not None and cached.generation == self._changes.generation:
            if cached.expires > now:
                return cached
            if cached.expires + self._ttl > now:
                self._refresh_config_later(project)
                return cached
        key = ("config", project)
        inflight = self._inflight.get(key)
        if inflight is not None:
            config: _Config = await asyncio.shield(inflight)
            return config
        return await self._single_flight(key, self._load_config(project, now))

    async def _load_config(self, project: str, now: datetime) -> _Config:
        generation = self._changes.generation
        loaded = await self._resources.load_config(project)
        attestors = loaded.attestors
        fingerprint = "|".join(
            f"{name}={attestor_fingerprint(a)}" for name, a in sorted(attestors.items())
        )
        config = _Config(
            generation, now + self._ttl, loaded.policy, attestors, fingerprint, loaded.unusable
        )
        if self._ttl:
            self._configs[project] = config
        return config

    def _refresh_config_later(self, project: str) -> None:
        key = ("config", project)
        if key not in self._inflight:
            self._background(key, self._load_config(project, self._clock()))

    # ----------------------------------------------------------------- evidence

    def _usable_evidence(
        self, key: tuple[str, ...], image: ImageReference, now: datetime
    ) -> _CachedEvidence | None:
        """A cached entry whose inputs have not changed here and that is not too old."""
        if not self._ttl:
            return None
        entry = self._evidence.get(key)
        if (
            entry is None
            or entry.generation != self._changes.generation
            or entry.version != self._changes.resource_version(image.canonical)
            or entry.expires + self._ttl <= now
        ):
            return None
        return entry

    async def _gather_once(
        self,
        config: _Config,
        projects: tuple[str, ...],
        images: Sequence[ImageReference],
        now: datetime,
        needs: Mapping[str, EvidenceNeeds],
    ) -> dict[str, ImageEvidence]:
        loop = asyncio.get_running_loop()
        keys = {i.canonical: _evidence_key(config, projects, i, needs) for i in images}
        futures = {c: loop.create_future() for c in keys}
        for canonical, key in keys.items():
            self._inflight[key] = futures[canonical]
        try:
            result = await self._gather(config, projects, images, now, needs)
        except BaseException as exc:
            for future in futures.values():
                future.set_exception(exc)
                future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            for canonical, future in futures.items():
                future.set_result(result[canonical])
            return result
        finally:
            for key in keys.values():
                self._inflight.pop(key, None)

    async def _gather(
        self,
        config: _Config,
        projects: tuple[str, ...],
        images: Sequence[ImageReference],
        now: datetime,
        needs: Mapping[str, EvidenceNeeds],
    ) -> dict[str, ImageEvidence]:
        # Versions are read before gathering: a write that races with the gathering makes the
        # new entry stale at once instead of hiding behind it.
        versions = {i.canonical: self._changes.resource_version(i.canonical) for i in images}
        generation = self._changes.generation
        wanted = {i.canonical: needs[i.canonical] for i in images}
        gathered = await self.gatherer.gather(images, config.attestors, projects, now, needs=wanted)
        result = {i.canonical: gathered.for_image(i) for i in images}
        if self._ttl:
            if len(self._evidence) > 50_000:
                self._evidence.clear()
            for image in images:
                if result[image.canonical].incomplete:
                    # Not kept: a budget shared with another image of the request, or a bound,
                    # made it partial; the next review reads again (verified signatures stay in
                    # the verification cache, so repeated reviews get further each time).
                    continue
                key = _evidence_key(config, projects, image, needs)
                self._evidence[key] = _CachedEvidence(
                    generation, versions[image.canonical], now + self._ttl, result[image.canonical]
                )
        return result

    def _refresh_later(
        self,
        key: tuple[str, ...],
        images: Sequence[ImageReference],
        config: _Config,
        projects: tuple[str, ...],
        needs: Mapping[str, EvidenceNeeds],
    ) -> None:
        if key not in self._inflight:
            self._background(key, self._gather(config, projects, images, self._clock(), needs))

    # ----------------------------------------------------------------- plumbing

    async def _single_flight(self, key: tuple[str, ...], work: Awaitable[T]) -> T:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await work
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()
            raise
        else:
            future.set_result(result)
            return result
        finally:
            self._inflight.pop(key, None)

    def _background(self, key: tuple[str, ...], work: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await self._single_flight(key, work)
            except Exception:  # the stale entry keeps serving until it is too old
                log.warning("background cache refresh failed", key=key[-1], exc_info=True)

        task = asyncio.get_running_loop().create_task(run())
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)

    async def close(self) -> None:
        for task in list(self._refreshing):
            task.cancel()
        await asyncio.gather(*self._refreshing, return_exceptions=True)
