"""What REST handlers are given: the wired services, as FastAPI dependencies.

:func:`chainproof.api.rest.app.create_app` hands the :class:`~chainproof.services.wiring.Services`
it was built with (and the metrics) to :func:`provide`; this module is the only one that keeps
them on the app and reads them back.
A handler names the use case it needs as a parameter (``grafeas: Grafeas``), so what it uses
is in its signature, and tests can swap one with ``app.dependency_overrides``.

The dependencies are ``async`` on purpose: FastAPI would run plain functions on a thread pool,
a cost the admission path does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, Request
from prometheus_client import CollectorRegistry

from chainproof.services.access.control import AccessControl
from chainproof.services.dashboard import Dashboard
from chainproof.services.judge.admission import AdmissionService
from chainproof.services.judge.decision_log import DecisionLog
from chainproof.services.judge.findings import FindingsService
from chainproof.services.judge.judging import Judge
from chainproof.services.judge.kritis import KritisJudge
from chainproof.services.judge.resources import JudgeResources
from chainproof.services.judge.subscriptions import SubscriptionService
from chainproof.services.judge.vouching import Vouching
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.services.scribe.ingestion import IngestService
from chainproof.services.scribe.scanning import ScanService
from chainproof.services.wiring import Services

if TYPE_CHECKING:
    from chainproof.api.rest.ops import Metrics  # ops needs these dependencies itself


def provide(app: FastAPI, services: Services, metrics: Metrics) -> None:
    """Make ``services`` and ``metrics`` what the dependencies below hand out in ``app``."""
    app.state.services = services
    app.state.metrics = metrics


def services_of(request: Request) -> Services:
    """The app's services, for code that runs outside a handler's signature (permission
    checks naming a resource, middleware-like helpers)."""
    services: Services = request.app.state.services
    return services


async def _services(request: Request) -> Services:
    return services_of(request)


AllServices = Annotated[Services, Depends(_services)]


async def _grafeas(s: AllServices) -> GrafeasService:
    return s.grafeas


async def _judge_resources(s: AllServices) -> JudgeResources:
    return s.judge_resources


async def _judge(s: AllServices) -> Judge:
    return s.judge


async def _kritis(s: AllServices) -> KritisJudge:
    return s.kritis


async def _decisions(s: AllServices) -> DecisionLog:
    return s.decisions


async def _admission(s: AllServices) -> AdmissionService:
    return s.admission


async def _scanner(s: AllServices) -> ScanService:
    return s.scanner


async def _vouching(s: AllServices) -> Vouching:
    return s.vouching


async def _ingest(s: AllServices) -> IngestService:
    return s.ingest


async def _findings(s: AllServices) -> FindingsService:
    return s.findings


async def _subscriptions(s: AllServices) -> SubscriptionService:
    return s.subscriptions


async def _dashboard(s: AllServices) -> Dashboard:
    return s.dashboard


async def _access(s: AllServices) -> AccessControl:
    return s.access


async def _metrics(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry = request.app.state.metrics.registry
    return registry


Grafeas = Annotated[GrafeasService, Depends(_grafeas)]
Resources = Annotated[JudgeResources, Depends(_judge_resources)]
JudgeDep = Annotated[Judge, Depends(_judge)]
Kritis = Annotated[KritisJudge, Depends(_kritis)]
Decisions = Annotated[DecisionLog, Depends(_decisions)]
Admission = Annotated[AdmissionService, Depends(_admission)]
Scanner = Annotated[ScanService, Depends(_scanner)]
VouchingDep = Annotated[Vouching, Depends(_vouching)]
Ingest = Annotated[IngestService, Depends(_ingest)]
FindingsDep = Annotated[FindingsService, Depends(_findings)]
Subscriptions = Annotated[SubscriptionService, Depends(_subscriptions)]
DashboardDep = Annotated[Dashboard, Depends(_dashboard)]
Access = Annotated[AccessControl, Depends(_access)]
MetricsRegistry = Annotated[CollectorRegistry, Depends(_metrics)]
