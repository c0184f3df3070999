"""What REST handlers are given: the wired services, as FastAPI dependencies.

:func:`chainproof.api.rest.app.create_app` hands the :class:`~chainproof.services.wiring.Services`
it was built with (and the metrics) to :func:`provide`; this module is the only one that keeps
them on the app and reads them back.
A handler names the use case it needs as a parameter (``grafeas: Grafeas``), so what it uses
is in its signature, and tests can swap one with ``app.dependency_overrides``.

The dependencies are ``async`` on purpose (FastAPI would run plain functions on a thread
pool), and each reads the request directly rather than through :data:`AllServices`: one
dependency per handler on the admission path, not two.
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
from chainproof.services.judge.impact import ImpactService
from chainproof.services.judge.judging import Judge
from chainproof.services.judge.kritis import KritisJudge
from chainproof.services.judge.replay import PolicyReplay
from chainproof.services.judge.resources import JudgeResources
from chainproof.services.judge.subscriptions import SubscriptionService
from chainproof.services.judge.violations import ViolationService
from chainproof.services.judge.vouching import Vouching
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.services.scribe.ingestion import IngestService
from chainproof.services.scribe.registry_sources import RegistrySources
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


async def _grafeas(request: Request) -> GrafeasService:
    return services_of(request).grafeas


async def _judge_resources(request: Request) -> JudgeResources:
    return services_of(request).judge_resources


async def _judge(request: Request) -> Judge:
    return services_of(request).judge


async def _kritis(request: Request) -> KritisJudge:
    return services_of(request).kritis


async def _decisions(request: Request) -> DecisionLog:
    return services_of(request).decisions


async def _admission(request: Request) -> AdmissionService:
    return services_of(request).admission


async def _scanner(request: Request) -> ScanService:
    return services_of(request).scanner


async def _vouching(request: Request) -> Vouching:
    return services_of(request).vouching


async def _ingest(request: Request) -> IngestService:
    return services_of(request).ingest


async def _registry_sources(request: Request) -> RegistrySources:
    return services_of(request).registry_sources


async def _findings(request: Request) -> FindingsService:
    return services_of(request).findings


async def _subscriptions(request: Request) -> SubscriptionService:
    return services_of(request).subscriptions


async def _impact(request: Request) -> ImpactService:
    return services_of(request).impact


async def _replay(request: Request) -> PolicyReplay:
    return services_of(request).replay


async def _violations(request: Request) -> ViolationService:
    return services_of(request).violations


async def _dashboard(request: Request) -> Dashboard:
    return services_of(request).dashboard


async def _access(request: Request) -> AccessControl:
    return services_of(request).access


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
RegistrySourcesDep = Annotated[RegistrySources, Depends(_registry_sources)]
FindingsDep = Annotated[FindingsService, Depends(_findings)]
Subscriptions = Annotated[SubscriptionService, Depends(_subscriptions)]
Impact = Annotated[ImpactService, Depends(_impact)]
Replay = Annotated[PolicyReplay, Depends(_replay)]
Violations = Annotated[ViolationService, Depends(_violations)]
DashboardDep = Annotated[Dashboard, Depends(_dashboard)]
Access = Annotated[AccessControl, Depends(_access)]
MetricsRegistry = Annotated[CollectorRegistry, Depends(_metrics)]
