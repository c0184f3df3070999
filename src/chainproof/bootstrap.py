"""The one composition root: settings in, a wired system out.

Everything that connects, reads secrets or configures logging happens here, when asked, never
at import time. Entrypoints (``chainproof serve``, tests) call :func:`build_app` or
:func:`open_container` and get back objects that know nothing of how they were made.
"""

from __future__ import annotations

import logging
import secrets
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from fastapi import FastAPI

from chainproof.api.rest.app import create_app
from chainproof.api.rest.ops import Metrics
from chainproof.attest.vouch_forms import read_forms
from chainproof.config import Settings, VoucherSettings
from chainproof.domain.names import validate_project_id
from chainproof.domain.pagination import PageTokenCodec
from chainproof.errors import InvalidArgument
from chainproof.services.access.control import AccessControl
from chainproof.services.dashboard import Dashboard
from chainproof.services.judge.admission import AdmissionService
from chainproof.services.judge.decision_log import DecisionLog
from chainproof.services.judge.decision_spill import DecisionSpill
from chainproof.services.judge.evidence import EvidenceGatherer, EvidenceLimits
from chainproof.services.judge.findings import FindingsService
from chainproof.services.judge.judging import Judge
from chainproof.services.judge.registry_evidence import RegistryEvidence
from chainproof.services.judge.resources import JudgeResources
from chainproof.services.judge.vouching import (
    AutoVoucher,
    ConfiguredVoucher,
    Vouching,
    read_vouch_policy,
)
from chainproof.services.scribe.changes import ChangeFeed
from chainproof.services.scribe.grafeas import GrafeasService
from chainproof.services.scribe.ingestion import IngestService
from chainproof.services.scribe.registry_recording import RegistryRecorder
from chainproof.services.scribe.scanning import ScanService
from chainproof.sources.registry.factory import build_registry_reader, load_configured_trusted_root
from chainproof.sources.registry.reader import RegistryReader
from chainproof.store.port import MetadataStore

if TYPE_CHECKING:
    from chainproof.services.judge.runtime_setup import Runtime
    from chainproof.services.judge.subscriptions import SubscriptionService
    from chainproof.sources.kubernetes.pull_secrets import ClusterPullSecrets

_TOKEN_SECRET_KEY = "page_token_secret"  # noqa: S105 - a key name, not a secret


@dataclass
class Container:
    """The wired application: what entrypoints are allowed to reach."""

    settings: Settings
    store: MetadataStore
    grafeas: GrafeasService
    judge_resources: JudgeResources
    judge: Judge
    decisions: DecisionLog
    admission: AdmissionService
    changes: ChangeFeed
    scanner: ScanService
    vouching: Vouching
    dashboard: Dashboard
    access: AccessControl
    ingest: IngestService
    findings: FindingsService
    metrics: Metrics = field(default_factory=Metrics)
    #: Reads cosign signatures, attestations and bundles (and resolves tags) from registries.
    registry: RegistryReader | None = None
    #: Records verified registry evidence in the scribe (registry.record_evidence).
    registry_recorder: RegistryRecorder | None = None
    #: Reads pods' imagePullSecrets from the cluster (registry.pull_secrets).
    pull_secrets: ClusterPullSecrets | None = None
    #: The inventory, the leader election and the leader's work (watchers, notifier).
    runtime: Runtime | None = None
    subscriptions: SubscriptionService | None = None
    #: Started alongside the REST app; stopped, in reverse order, by close().
    companions: list[Companion] = field(default_factory=list)

    async def start_companions(self) -> None:
        self.decisions.start()
        channel = self.store.change_channel()
        if channel is not None:
            self.changes.attach(channel)
        if self.settings.grpc_enabled:
            from chainproof.api.grpc.server import start_grpc_server

            self.companions.append(await start_grpc_server(self))
        if self.runtime is not None:
            self.runtime.register_metrics(self.metrics.registry)
            self.runtime.worker.start()
            self.companions.append(self.runtime.worker)

    async def close(self) -> None:
        try:
            for companion in reversed(self.companions):
                await companion.stop(grace=2.0)
        finally:
            self.companions.clear()
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
            await self.store.close()


class Companion(Protocol):
    """A server started with the REST app (the gRPC server is one)."""

    async def stop(self, grace: float | None) -> None: ...


def configure_logging(settings: Settings) -> None:
    """One log format for everything: chainproof's structlog events and the standard-library
    loggers of its dependencies (uvicorn, grpc, SQLAlchemy) alike, on stderr."""
    level = getattr(logging, settings.log_level.upper())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # chainproof's own events go through the standard library too, so that one handler
    # renders every line the same way.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_color_message],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs handlers of its own unless told not to (log_config=None, see serve);
    # make sure its loggers go through the root handler above.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.setLevel(logging.NOTSET)  # follow the configured level
        named.propagate = True
    # Alembic announces every plugin it loads at INFO on each start; only problems matter.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))


def _drop_color_message(
    _logger: object, _method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    event.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return event


def _create_store(settings: Settings) -> MetadataStore:
    # Imported here so that importing bootstrap never pulls in database drivers.
    from chainproof.store.factory import create_store

    return create_store(settings.database_url)


async def _token_secret(settings: Settings, store: MetadataStore) -> bytes:
    if settings.page_token_secret is not None:
        return settings.page_token_secret.get_secret_value().encode()
    # Shared through the database so every replica accepts every other replica's tokens.
    async with store.session() as s:
        value = await s.meta.get_or_set(_TOKEN_SECRET_KEY, secrets.token_hex(32))
    return bytes.fromhex(value)


async def open_container(settings: Settings, store: MetadataStore | None = None) -> Container:
    """Open the store (running migrations) and wire the services on top of it."""
    from chainproof.services.access.setup import check_listener

    check_listener(settings)
    store = store if store is not None else _create_store(settings)
    await store.open()
    try:
        tokens = PageTokenCodec(await _token_secret(settings, store))
    except BaseException:
        await store.close()
        raise
    changes = ChangeFeed()
    grafeas = GrafeasService(store, tokens, changes=changes)
    resources = JudgeResources(store, tokens, changes=changes)
    pull_secrets = _pull_secrets(settings)
    try:
        trusted_root = load_configured_trusted_root(settings.registry)
        registry = build_registry_reader(settings.registry, None, pull_secrets=pull_secrets)
    except BaseException:
        await store.close()
        raise
    registry_evidence = RegistryEvidence(
        registry, trusted_root=trusted_root, timeout_seconds=settings.registry.timeout_seconds
    )
    limits = EvidenceLimits(
        max_occurrences=settings.admission.max_evidence_occurrences,
        max_signature_checks=settings.admission.max_signature_checks,
    )
    recorder: RegistryRecorder | None = None
    if settings.registry.record_evidence:
        record_project = settings.registry.record_project or settings.admission.project
        try:
            validate_project_id(record_project, field="registry.record_project")
        except BaseException:
            await store.close()
            raise
        recorder = RegistryRecorder(grafeas, record_project)
    judge = Judge(
        resources,
        EvidenceGatherer(
            store,
            limits=limits,
            registry=registry_evidence,
            on_registry_facts=recorder.offer if recorder is not None else None,
        ),
        changes=changes,
        cache_ttl=timedelta(seconds=settings.admission.cache_ttl_seconds),
    )
    decisions = _decision_log(settings, store, tokens)
    scanner = ScanService(
        store, grafeas, provider_project=settings.scanning.provider_project, changes=changes
    )
    ingest = IngestService(store, changes=changes)
    if settings.scanning.scan_on_sbom:
        grafeas.add_listener(scanner.on_occurrences)
        ingest.add_listener(scanner.on_occurrences)  # an ingested SBOM is matched at once
    # The attestor judges scribe evidence with the judge's bounds (a bound hit fails closed).
    vouching = Vouching(grafeas, EvidenceGatherer(store, limits=limits))
    if settings.scanning.vouchers:
        try:
            vouchers = [_voucher(v) for v in settings.scanning.vouchers]
        except BaseException:
            await store.close()
            raise
        scanner.add_after_scan(AutoVoucher(vouching, grafeas, vouchers).image_changed)
    from chainproof.services.access.setup import build_access_control
    from chainproof.services.judge.runtime_setup import build_runtime
    from chainproof.services.judge.subscriptions import SubscriptionService

    runtime = build_runtime(settings, store)
    return Container(
        settings=settings,
        store=store,
        grafeas=grafeas,
        judge_resources=resources,
        judge=judge,
        decisions=decisions,
        admission=AdmissionService(
            judge,
            decisions,
            grafeas,
            settings.admission,
            admitted_pods=runtime.admitted_pods(settings),
        ),
        changes=changes,
        registry=registry,
        registry_recorder=recorder,
        pull_secrets=pull_secrets,
        dashboard=Dashboard(store),
        scanner=scanner,
        vouching=vouching,
        access=build_access_control(settings, store),
        ingest=ingest,
        findings=FindingsService(store, vouching, settings.scanning.provider_project),
        runtime=runtime,
        subscriptions=SubscriptionService(store, settings.notifications),
    )


def _decision_log(settings: Settings, store: MetadataStore, tokens: PageTokenCodec) -> DecisionLog:
    config = settings.decision_log
    spill = (
        DecisionSpill(config.spill_dir, max_bytes=config.max_spill_bytes)
        if config.spill_dir is not None
        else None
    )
    return DecisionLog(
        store,
        tokens,
        max_queue=config.queue_size,
        spill=spill,
        retry_max_seconds=config.retry_max_seconds,
    )


def _pull_secrets(settings: Settings) -> ClusterPullSecrets | None:
    """The reader of pods' pull secrets, when registry.pull_secrets names a cluster. The API
    client is made on first use (nothing connects at start)."""
    access = settings.registry.pull_secrets
    if access is None:
        return None
    from chainproof.sources.kubernetes.client import ClusterConnection, api_client
    from chainproof.sources.kubernetes.pull_secrets import ClusterPullSecrets

    async def make() -> Any:
        token = None
        if access.token_file is not None:
            try:
                token = access.token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InvalidArgument(
                    f"registry.pull_secrets.token_file: cannot read {access.token_file}: "
                    f"{exc.strerror}"
                ) from exc
        return await api_client(
            ClusterConnection(
                name="pull-secrets",
                in_cluster=access.in_cluster,
                kubeconfig=access.kubeconfig,
                context=access.context,
                url=access.url,
                token=token,
                ca_file=access.ca_file,
            )
        )

    return ClusterPullSecrets(make)


def _voucher(v: VoucherSettings) -> ConfiguredVoucher:
    """Read a configured attestor's policy and key once, at start-up."""
    import yaml

    from chainproof.crypto.signing import PkixSigner
    from chainproof.domain.names import parse_note_name

    try:
        policy = read_vouch_policy(yaml.safe_load(v.policy_file.read_text(encoding="utf-8")))
        pem = v.key_file.read_bytes()
    except OSError as exc:
        raise InvalidArgument(
            f"scanning.vouchers: cannot read {exc.filename}: {exc.strerror}"
        ) from exc
    return ConfiguredVoucher(
        note_name=str(parse_note_name(v.attestor_note, field="scanning.vouchers.attestor_note")),
        policy=policy,
        signer=PkixSigner.from_pem(pem, v.algorithm, v.key_id),
        forms=read_forms(v.format),
    )


def app_from_environment() -> FastAPI:
    """Application factory for worker processes: settings from ``CHAINPROOF_…`` only."""
    from chainproof.config import load_settings

    settings = load_settings()
    configure_logging(settings)
    return build_app(settings)


def build_app(settings: Settings, store: MetadataStore | None = None) -> FastAPI:
    """The REST application; the container is opened when the app starts (lifespan)."""

    async def opener() -> Container:
        return await open_container(settings, store)

    return create_app(opener, max_body_bytes=settings.max_body_bytes)
