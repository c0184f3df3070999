"""The one composition root: settings in, a wired and running system out.

Everything that connects, reads secrets or configures logging happens here, when asked, never
at import time. This is the only module that knows how the parts fit:

* :func:`build_services` wires every use case on a store (the server, the offline CLI and the
  test fixtures all call it, so they share one change feed and one set of caches);
* :func:`open_services` opens the store and what the settings point at, then wires;
* :func:`serve` runs the REST app, the gRPC server and the background workers as siblings in
  one task group, with one shutdown (``chainproof serve``; each worker process of
  ``--workers N`` runs it too, see :mod:`chainproof.supervisor`);
* :func:`build_app` is the REST app alone for ASGI servers that own the event loop (tests).

Entrypoints (``api/``, ``cli/``) never import this module: they receive what they use.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sigstore.models import TrustedRoot

from chainproof.attest.vouch_forms import read_forms
from chainproof.config import Settings, TLSSettings, VoucherSettings
from chainproof.domain.names import validate_project_id
from chainproof.domain.pagination import PageTokenCodec
from chainproof.errors import InvalidArgument
from chainproof.listeners import bind_rest_socket
from chainproof.services.access.setup import build_access_control, check_listener
from chainproof.services.common import Clock, utc_now
from chainproof.services.dashboard import Dashboard
from chainproof.services.judge.admission import AdmissionService
from chainproof.services.judge.decision_log import DecisionLog
from chainproof.services.judge.decision_spill import DecisionSpill
from chainproof.services.judge.evidence import EvidenceGatherer, EvidenceLimits
from chainproof.services.judge.findings import FindingsService
from chainproof.services.judge.impact import ImpactService
from chainproof.services.judge.judging import Judge
from chainproof.services.judge.kritis import KritisJudge
from chainproof.services.judge.registry_evidence import RegistryEvidence
from chainproof.services.judge.replay import PolicyReplay
from chainproof.services.judge.resources import JudgeResources
from chainproof.services.judge.runtime_setup import (
    add_continuous_validation,
    build_runtime,
    project_clusters,
)
from chainproof.services.judge.subscriptions import SubscriptionService
from chainproof.services.judge.violations import ViolationService
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
from chainproof.services.scribe.registry_sources import RegistrySources
from chainproof.services.scribe.scanning import ScanService
from chainproof.services.wiring import Services
from chainproof.sources.registry.factory import build_registry_reader, load_configured_trusted_root
from chainproof.sources.registry.reader import RegistryReader
from chainproof.store.port import MetadataStore

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp, Receive, Scope, Send

    from chainproof.api.grpc.server import GrafeasGrpcServer
    from chainproof.api.rest.ops import Metrics
    from chainproof.sources.kubernetes.pull_secrets import ClusterPullSecrets

__all__ = [
    "AppOpenedOnStartup",
    "Services",
    "build_app",
    "build_services",
    "configure_logging",
    "open_services",
    "prepare_store",
    "running",
    "serve",
    "serve_in_this_process",
]

log = structlog.get_logger("chainproof.server")

_TOKEN_SECRET_KEY = "page_token_secret"  # noqa: S105 - a key name, not a secret
#: How long in-flight gRPC calls and HTTP requests may take to finish once shutdown begins.
SHUTDOWN_GRACE_SECONDS = 10.0


# --------------------------------------------------------------------------- wiring


def build_services(
    store: MetadataStore,
    *,
    settings: Settings,
    tokens: PageTokenCodec,
    clock: Clock = utc_now,
    registry: RegistryReader | None = None,
    trusted_root: TrustedRoot | None = None,
    pull_secrets: ClusterPullSecrets | None = None,
) -> Services:
    """Wire every use case on ``store``; the only place services are put together.

    Nothing is opened or connected: ``store`` is used as given, ``registry`` (None: no
    registry evidence, as offline) and the page-token codec come from the caller. The
    services share one :class:`ChangeFeed`, so a write through any of them reaches every
    cache built here."""
    changes = ChangeFeed()
    grafeas = GrafeasService(store, tokens, clock, changes=changes)
    resources = JudgeResources(store, tokens, clock, changes=changes)
    limits = EvidenceLimits(
        max_occurrences=settings.admission.max_evidence_occurrences,
        max_signature_checks=settings.admission.max_signature_checks,
    )
    recorder: RegistryRecorder | None = None
    if settings.registry.record_evidence:
        record_project = settings.registry.record_project or settings.admission.project
        validate_project_id(record_project, field="registry.record_project")
        recorder = RegistryRecorder(grafeas, record_project)
    registry_evidence = (
        RegistryEvidence(
            registry, trusted_root=trusted_root, timeout_seconds=settings.registry.timeout_seconds
        )
        if registry is not None
        else None
    )
    judge = Judge(
        resources,
        EvidenceGatherer(
            store,
            limits=limits,
            registry=registry_evidence,
            on_registry_facts=recorder.offer if recorder is not None else None,
        ),
        clock,
        changes=changes,
        cache_ttl=timedelta(seconds=settings.admission.cache_ttl_seconds),
    )
    decisions = _decision_log(settings, store, tokens, clock)
    scanner = ScanService(
        store,
        grafeas,
        provider_project=settings.scanning.provider_project,
        clock=clock,
        changes=changes,
    )
    ingest = IngestService(store, clock, changes=changes)
    if settings.scanning.scan_on_sbom:
        grafeas.add_listener(scanner.on_occurrences)
        ingest.add_listener(scanner.on_occurrences)  # an ingested SBOM is matched at once
    # The attestor judges scribe evidence with the judge's bounds (a bound hit fails closed).
    vouching = Vouching(grafeas, EvidenceGatherer(store, limits=limits), clock)
    if settings.scanning.vouchers:
        vouchers = [_voucher(v) for v in settings.scanning.vouchers]
        scanner.add_after_scan(AutoVoucher(vouching, grafeas, vouchers).image_changed)
    # The runtime side (inventory, leader election, watchers, notifier): built here, run by
    # the host through Services.workers().
    runtime = build_runtime(settings, store)
    scribe_only = EvidenceGatherer(store, limits=limits)

    def clusters(project: str) -> tuple[str, ...]:
        return project_clusters(settings, project)

    def batch_judge(now: datetime) -> Judge:
        # The re-judging worker's judge for one batch (ADR 0112): the server judge's gatherer
        # and change feed, a cache that lives as long as the batch, the batch's time.
        return Judge(
            resources, judge.gatherer, lambda: now, changes=changes, cache_ttl=timedelta(minutes=30)
        )

    add_continuous_validation(runtime, settings, store, resources, batch_judge, clock)
    return Services(
        settings=settings,
        store=store,
        changes=changes,
        grafeas=grafeas,
        judge_resources=resources,
        judge=judge,
        kritis=KritisJudge(judge.gatherer, clock),
        decisions=decisions,
        admission=AdmissionService(
            judge,
            decisions,
            grafeas,
            settings.admission,
            clock,
            admitted_pods=runtime.admitted_pods(settings),
        ),
        scanner=scanner,
        vouching=vouching,
        dashboard=Dashboard(store),
        access=build_access_control(settings, store),
        ingest=ingest,
        findings=FindingsService(store, vouching, settings.scanning.provider_project),
        impact=ImpactService(store, judge, resources, scribe_only, clusters, tokens, clock),
        replay=PolicyReplay(store, resources, scribe_only, clusters, clock),
        registry=registry,
        registry_recorder=recorder,
        pull_secrets=pull_secrets,
        runtime=runtime,
        subscriptions=SubscriptionService(
            store, settings.notifications, clock, settings.outbound.destination_policy()
        ),
        registry_sources=RegistrySources(store),
        violations=ViolationService(store, tokens),
    )


def _decision_log(
    settings: Settings, store: MetadataStore, tokens: PageTokenCodec, clock: Clock
) -> DecisionLog:
    config = settings.decision_log
    spill = (
        DecisionSpill(config.spill_dir, max_bytes=config.max_spill_bytes)
        if config.spill_dir is not None
        else None
    )
    return DecisionLog(
        store,
        tokens,
        clock,
        max_queue=config.queue_size,
        spill=spill,
        retry_max_seconds=config.retry_max_seconds,
    )


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


async def open_services(
    settings: Settings, store: MetadataStore | None = None, *, metrics: Metrics | None = None
) -> Services:
    """Open the store (running migrations), read what the settings point at (the page-token
    secret, the registry configuration, voucher keys) and wire the services on top.

    Registry metrics go to ``metrics`` when given (the server's registry, shared with REST
    and gRPC). On any failure the store is closed again before the error propagates."""
    check_listener(settings)
    store = store if store is not None else _create_store(settings)
    await store.open()
    registry: RegistryReader | None = None
    pull_secrets: ClusterPullSecrets | None = None
    try:
        tokens = PageTokenCodec(await _token_secret(settings, store))
        trusted_root = load_configured_trusted_root(settings.registry)
        pull_secrets = _pull_secrets(settings)
        registry = build_registry_reader(
            settings.registry,
            metrics.registry if metrics is not None else None,
            pull_secrets=pull_secrets,
            destinations=settings.outbound.destination_policy(),
        )
        services = build_services(
            store,
            settings=settings,
            tokens=tokens,
            registry=registry,
            trusted_root=trusted_root,
            pull_secrets=pull_secrets,
        )
        # Webhook secrets stored in clear by an older server are sealed now (ADR 0212), and
        # those a rotation's old key sealed are sealed again under the current one (ADR 0213).
        await services.subscriptions.reseal()
    except BaseException:
        if registry is not None:
            await registry.client.aclose()
        if pull_secrets is not None:
            await pull_secrets.close()
        await store.close()
        raise
    if metrics is not None:
        services.decisions.metrics.register(metrics.registry)
        services.runtime.register_metrics(metrics.registry)
    return services


async def prepare_store(settings: Settings) -> None:
    """Migrate the database and settle the shared page-token secret, then close it again:
    what a supervisor does once before its workers each open the store."""
    store = _create_store(settings)
    await store.open()
    try:
        await _token_secret(settings, store)
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def running(services: Services) -> AsyncIterator[Services]:
    """Run the services' background workers (one task group) while the block runs, then close
    the services. For hosts other than :func:`serve`: test fixtures, :func:`build_app`."""
    try:
        async with asyncio.TaskGroup() as group:
            for work in services.workers():
                group.create_task(work)
            try:
                yield services
            finally:
                await services.close()  # stops the workers, so the group can end
    finally:
        await services.close()  # once only; this covers a failure before the group ran


# --------------------------------------------------------------------------- serving


def _rest_server(
    settings: Settings, tls: TLSSettings, app: ASGIApp, on_started: Callable[[], None]
) -> Any:
    """uvicorn, minus its own signal handling: :func:`serve` owns signals and shutdown for
    every sibling at once (uvicorn would re-raise the signal after its own exit, killing the
    process before the other siblings stop)."""
    import uvicorn

    class RestServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                on_started()

    return RestServer(_uvicorn_config(settings, tls, app))


def _uvicorn_config(settings: Settings, tls: TLSSettings, app: ASGIApp) -> uvicorn.Config:
    import uvicorn

    from chainproof.api.rest.tls_identity import TlsIdentityProtocol

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # configure_logging owns the format of every line
        access_log=False,
        lifespan="off",  # serve() opens and closes the services, not the ASGI lifespan
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS),
        ssl_certfile=str(tls.cert_file) if tls.cert_file else None,
        ssl_keyfile=str(tls.key_file) if tls.key_file else None,
        ssl_ca_certs=str(tls.client_ca_file) if tls.client_ca_file else None,
        ssl_cert_reqs=2 if tls.client_ca_file else 0,  # ssl.CERT_REQUIRED for mutual TLS
        # Mutual TLS: hand the verified client certificate to the app (who is calling).
        http=TlsIdentityProtocol if tls.client_ca_file else "auto",
    )


def _keep_startup_objects() -> None:
    # Everything built so far (modules, settings, the wired services) lives as long as the
    # process: move it out of the collector's sight, and collect the young generation less
    # often, so that collection pauses stay out of request latency.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


@contextlib.contextmanager
def _signals(stop: asyncio.Event, rest: uvicorn.Server) -> Iterator[None]:
    """SIGTERM and SIGINT start the one shutdown; a second one stops waiting for requests."""
    if threading.current_thread() is not threading.main_thread():
        yield  # embedded (tests): the owner sets ``stop``
        return
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            rest.force_exit = True
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def serve(
    settings: Settings,
    *,
    store: MetadataStore | None = None,
    rest_socket: socket.socket | None = None,
    grpc_reuse_port: bool = False,
    stop: asyncio.Event | None = None,
    on_started: Callable[[], None] | None = None,
    rest_tls: TLSSettings | None = None,
) -> None:
    """Serve until ``stop`` is set or SIGTERM/SIGINT arrives, then shut down once, in order.

    Siblings in one task group: uvicorn (REST, webhooks, UI) on ``rest_socket`` (bound here
    from the settings when not given), the gRPC server when enabled, and the services'
    background workers. If any of them fails, the others stop too. Shutdown: both servers
    stop accepting and finish what is in flight (up to :data:`SHUTDOWN_GRACE_SECONDS`), then
    the services drain queued work (decision records) and close, the store last.
    ``on_started`` is called once both servers listen. ``rest_tls`` gives REST its own TLS
    when it must differ from gRPC's (default: ``settings.tls`` for both).
    """
    # The servers are imported here, not at the top: the offline CLI only wires services.
    from chainproof.api.grpc.server import start_grpc_server
    from chainproof.api.rest.app import create_app
    from chainproof.api.rest.ops import Metrics

    stop = stop if stop is not None else asyncio.Event()
    sock = (
        rest_socket if rest_socket is not None else bind_rest_socket(settings.host, settings.port)
    )
    metrics = Metrics()
    try:
        services = await open_services(settings, store, metrics=metrics)
    except BaseException:
        if rest_socket is None:
            sock.close()
        raise
    grpc_server: GrafeasGrpcServer | None = None
    try:
        if settings.grpc_enabled:
            grpc_server = await start_grpc_server(
                services.grafeas,
                services.access,
                settings=settings,
                collectors=metrics.registry,
                reuse_port=grpc_reuse_port,
            )
        rest = _rest_server(
            settings,
            rest_tls if rest_tls is not None else settings.tls,
            create_app(services, metrics),
            on_started or _nothing,
        )
        _keep_startup_objects()
        with _signals(stop, rest):
            async with asyncio.TaskGroup() as group:
                for work in services.workers():
                    group.create_task(work)
                serving = group.create_task(rest.serve(sockets=[sock]))
                stopping = group.create_task(stop.wait())
                await asyncio.wait((serving, stopping), return_when=asyncio.FIRST_COMPLETED)
                log.info("shutting down")
                rest.should_exit = True
                stopping.cancel()
                if grpc_server is not None:
                    await grpc_server.stop(grace=SHUTDOWN_GRACE_SECONDS)
                await serving
                await services.close()  # drains, then stops the workers: the group ends
    finally:
        if grpc_server is not None:
            await grpc_server.stop(None)
        await services.close()
        if rest_socket is None:
            sock.close()


def _nothing() -> None:
    return None


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (as uvicorn's ``loop="auto"`` picks), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def serve_in_this_process(settings: Settings) -> None:
    """``chainproof serve`` with one worker: :func:`serve` on the best event loop."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(serve(settings))


# --------------------------------------------------------------------------- the app alone


class AppOpenedOnStartup:
    """The REST app for ASGI servers that own the event loop and speak the lifespan protocol
    (Starlette's TestClient): the services are opened, with their background workers, when
    that server starts the app, in its loop, and closed when it stops it. gRPC is not served.
    """

    def __init__(self, settings: Settings, store: MetadataStore | None) -> None:
        from starlette.datastructures import State

        self._settings = settings
        self._store = store
        self._app: ASGIApp | None = None
        #: As on a Starlette app; ``state.services`` is set once the app has started.
        self.state = State()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self._app is None:
            raise RuntimeError("the app was called before its lifespan started it")
        await self._app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        from chainproof.api.rest.app import create_app
        from chainproof.api.rest.ops import Metrics

        started = False
        try:
            metrics = Metrics()
            services = await open_services(self._settings, self._store, metrics=metrics)
            async with running(services):
                self._app = create_app(services, metrics)
                self.state.services = services
                await send({"type": "lifespan.startup.complete"})
                started = True
                message = await receive()
                assert message["type"] == "lifespan.shutdown"
        except BaseException as exc:
            kind = "shutdown" if started else "startup"
            await send({"type": f"lifespan.{kind}.failed", "message": str(exc)})
            raise
        await send({"type": "lifespan.shutdown.complete"})


def build_app(settings: Settings, store: MetadataStore | None = None) -> AppOpenedOnStartup:
    """The REST app alone, opening its services when its ASGI server starts it (see
    :class:`AppOpenedOnStartup`); ``chainproof serve`` uses :func:`serve` instead."""
    return AppOpenedOnStartup(settings, store)


# --------------------------------------------------------------------------- logging


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
