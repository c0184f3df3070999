"""Judging a deployment against Kritis resources the caller hands over, on stored evidence.

Kritis keeps its ImageSecurityPolicy, GenericAttestationPolicy and AttestationAuthority
resources in the cluster, not in chainproof; so they come with each request (the offline CLI
reads them from files, the server from the body of ``POST /v1/projects/{p}/kritis:evaluate``).
This module owns what happens next, once for both: the authorities become the attestors whose
signatures count, the evidence is gathered from the store for those attestors only, and the
pure :func:`~chainproof.policy.evaluate_kritis` decides. Nothing is stored or recorded, and
nothing is cached: the resources are the request's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime

from chainproof.domain.images import ImageReference, parse_image_reference
from chainproof.errors import InvalidArgument
from chainproof.policy import AdmissionRequest, Decision, evaluate_kritis
from chainproof.policy.kritis import (
    AttestationAuthority,
    GenericAttestationPolicy,
    ImageSecurityPolicy,
    KritisResource,
)
from chainproof.services.common import Clock, utc_now
from chainproof.services.judge.evidence import EvidenceGatherer


class KritisJudge:
    """Evaluates requests against Kritis resources with the judge's evidence gatherer."""

    def __init__(self, gatherer: EvidenceGatherer, clock: Clock = utc_now) -> None:
        self._gatherer = gatherer
        self._clock = clock

    async def evaluate(
        self,
        resources: Sequence[KritisResource],
        request: AdmissionRequest,
        *,
        evidence_projects: Sequence[str],
        now: datetime | None = None,
    ) -> Decision:
        """Judge ``request`` as Kritis would (see :mod:`chainproof.policy.kritis`), reading
        attestations and findings about its images from ``evidence_projects``."""
        now = now or self._clock()
        authorities = [r for r in resources if isinstance(r, AttestationAuthority)]
        policies = [
            r for r in resources if isinstance(r, ImageSecurityPolicy | GenericAttestationPolicy)
        ]
        images: list[ImageReference] = []
        for text in request.images:
            # Unparseable references are judged (and refused, with a reason) by the evaluator.
            with contextlib.suppress(InvalidArgument):
                images.append(parse_image_reference(text))
        attestors = {a.meta.name: a.as_attestor() for a in authorities}
        evidence = await self._gatherer.gather(images, attestors, evidence_projects, now)
        return evaluate_kritis(policies, authorities, request, evidence, now)
