"""The wired use cases: the one object every entrypoint is handed.

:class:`Services` is what :func:`chainproof.bootstrap.build_services` returns and what the REST
app, the gRPC server, the offline CLI and the test fixtures receive. It owns nothing but the
lifecycle of what it holds: which long-running workers the services need (:meth:`workers`),
and closing everything in the right order (:meth:`close`). How each part is built is the
composition root's business; what each part does is its own module's.

Defined here, below ``api/`` and ``cli/``, so that entrypoints can name the type without
importing the composition root (which imports them).
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chainproof.config import Settings
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
from chainproof.services.judge.vouching import Vouching
from chainproof.services.scribe.changes import ChangeFeed
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.services.scribe.ingestion import IngestService
from chainproof.services.scribe.registry_recording import RegistryRecorder
from chainproof.services.scribe.registry_sources import RegistrySources
from chainproof.services.scribe.scanning import ScanService
from chainproof.sources.registry.reader import RegistryReader
from chainproof.store.port import MetadataStore

if TYPE_CHECKING:  # the Kubernetes client is imported only where a cluster is configured
    from chainproof.services.judge.runtime_setup import Runtime
    from chainproof.services.judge.subscriptions import SubscriptionService
    from chainproof.services.judge.violations import ViolationService
    from chainproof.sources.kubernetes.pull_secrets import ClusterPullSecrets


@dataclass(frozen=True, eq=False)
class Services:
    """Every use case, wired once on one store, sharing one change feed and its caches."""

    #: The settings the services were built from (entrypoints read their own parts of it:
    #: the admission project, the scanner's provider project, tag resolution).
    settings: Settings
    #: The store itself, for readiness probes and the few reads that belong to no use case.
    store: MetadataStore
    changes: ChangeFeed
    grafeas: GrafeasService
    judge_resources: JudgeResources
    judge: Judge
    #: Judges against Kritis resources given with the request, on the judge's evidence.
    kritis: KritisJudge
    decisions: DecisionLog
    admission: AdmissionService
    scanner: ScanService
    vouching: Vouching
    dashboard: Dashboard
    access: AccessControl
    ingest: IngestService
    #: An image's vulnerability findings, whoever found them, with what VEX says of each.
    findings: FindingsService
    #: Which running workloads a CVE, package, key, attestor or image touches (and verdicts).
    impact: ImpactService
    #: What a proposed policy would change: replay, diff, coverage (enforcing nothing).
    replay: PolicyReplay
    #: Notification subscriptions (the outbox's subscribers) and their delivery logs.
    subscriptions: SubscriptionService
    #: Where recorded registry evidence came from (the registry-evidence documents).
    registry_sources: RegistrySources
    #: The inventory, the leader election and the leader's work (watchers, notifier,
    #: re-judging).
    runtime: Runtime
    #: Continuous-validation violations, as the REST API lists them.
    violations: ViolationService
    #: Reads cosign signatures, attestations and bundles (and resolves tags) from
    #: registries; None where no registry may be reached (offline, unit tests).
    registry: RegistryReader | None = None
    #: Records verified registry evidence in the scribe (registry.record_evidence).
    registry_recorder: RegistryRecorder | None = None
    #: Reads pods' imagePullSecrets from the cluster (registry.pull_secrets).
    pull_secrets: ClusterPullSecrets | None = None
    _closed: list[bool] = field(default_factory=list, repr=False)

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        """The background work the services need while they serve, as coroutines for the
        caller's task group: the decision-log writer, on a database that has one the change
        channel between replicas, and the runtime worker (leader election, then the
        watchers and the notifier while this replica leads). Each runs until :meth:`close`
        stops it."""
        work: list[Coroutine[Any, Any, None]] = [self.decisions.run()]
        channel = self.store.change_channel()
        if channel is not None:
            work.append(self.changes.run(channel))
        if self.runtime.worker.task_names:
            # The leader's work (watchers, notifier), run while this replica leads.
            work.append(self.runtime.worker.run())
        return work

    async def close(self) -> None:
        """Finish the work already accepted, stop the workers, close the store (once).

        Order matters: scans and deployment records still running may write occurrences and
        decisions; the decision log flushes after them; the store closes last."""
        if self._closed:
            return
        self._closed.append(True)
        try:
            await self.runtime.worker.stop()
            await self.runtime.close()
            await self.scanner.drain()
            await self.admission.close()
            if self.registry_recorder is not None:
                await self.registry_recorder.close()
            await self.access.close()
            await self.judge.close()
            await self.changes.close()
            await self.decisions.close()
            if self.registry is not None:
                await self.registry.client.aclose()
            if self.pull_secrets is not None:
                await self.pull_secrets.close()
        finally:
            await self.store.close()
