"""Settings: `CHAINPROOF_…` environment variables, an optional TOML/YAML/JSON file, defaults.

Nothing reads settings at import time: :func:`load_settings` is called by the composition root
(:mod:`chainproof.bootstrap`) or the CLI, and its result is passed down explicitly.
Nested groups use a double underscore in environment variables, e.g.
``CHAINPROOF_ADMISSION__FAILURE_MODE=open``.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from chainproof.domain.destinations import (
    DEFAULT_DENIED_NETWORKS,
    DestinationPolicy,
    parse_networks,
)
from chainproof.errors import InvalidArgument

DEFAULT_SQLITE_URL = "sqlite:///./data/chainproof.db"
#: Same default as gRPC's maximum receive message size.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024


class TLSSettings(BaseModel):
    """Optional TLS for the REST and gRPC servers; mutual TLS when a client CA is given."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None


class AdmissionSettings(BaseModel):
    """How the admission webhook chooses a policy and behaves when things go wrong."""

    project: str = "default"
    cluster: str = ""
    failure_mode: Literal["closed", "open"] = "closed"
    deadline_seconds: float = Field(default=3.0, gt=0, le=30)
    breakglass_enabled: bool = True
    #: The longest a breakglass lasts, counted from admission (or, for a running pod, its
    #: creation); a later ``chainproof.dev/breakglass-expires`` is cut back to it.
    breakglass_max_hours: float = Field(default=24.0, gt=0, le=24 * 366)
    #: Refuse breakglass without ``chainproof.dev/breakglass-justification``.
    breakglass_require_justification: bool = False
    #: How long verified evidence, policies and attestors may be reused. Changes made
    #: through this server take effect at once; this bounds how long changes made through
    #: another replica can go unseen. 0 turns the cache off.
    cache_ttl_seconds: float = Field(default=5.0, ge=0, le=3600)
    #: Occurrences read per image and source (an attestor's note, the scan results of one
    #: project); a review whose evidence exceeds it is denied, saying so (never judged on
    #: the part that was read).
    max_evidence_occurrences: int = Field(default=10_000, ge=1, le=1_000_000)
    #: Signature checks (one signature against one key) one review may spend; spent, the
    #: review is denied, saying so.
    max_signature_checks: int = Field(default=2_000, ge=1, le=1_000_000)


class DecisionLogSettings(BaseModel):
    """How the decision log keeps every record through database outages (docs/admission.md)."""

    #: Records held in memory while the database is slow or down; past it they are spilled.
    queue_size: int = Field(default=10_000, ge=1, le=1_000_000)
    #: Where records past the queue wait on disk until the database takes them (replayed by
    #: this process, or by the next one to start with the same directory). None: not at all,
    #: and records past the queue are lost (counted in chainproof_decision_log_lost_total).
    spill_dir: Path | None = Path("data/decision-spill")
    #: Bytes the spill files may take in all; past it records are lost (and counted).
    max_spill_bytes: int = Field(default=1024 * 1024 * 1024, gt=0)
    #: Seconds between two attempts to reach the database, at most (attempts never stop).
    retry_max_seconds: float = Field(default=5.0, gt=0, le=300)


class RegistryHostSettings(BaseModel):
    """How to reach one OCI registry (``host`` as it appears in image references)."""

    host: str
    #: Plain HTTP: loopback test registries only.
    insecure: bool = False
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    mirrors: list[str] = Field(default_factory=list)
    redirect_hosts: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    max_retries: int = Field(default=2, ge=0, le=5)


class ClusterAccessSettings(BaseModel):
    """How chainproof reaches a cluster's API server: in-cluster (the pod's ServiceAccount),
    a kubeconfig (and context), or a URL with a bearer token file and CA."""

    model_config = {"extra": "forbid"}

    in_cluster: bool = False
    kubeconfig: Path | None = None
    context: str | None = None
    url: str | None = None
    token_file: Path | None = None
    ca_file: Path | None = None


class RegistrySettings(BaseModel):
    """Reading evidence from OCI registries (docs/registry.md)."""

    hosts: list[RegistryHostSettings] = Field(default_factory=list)
    #: Credentials in Docker config.json form (``auths``), e.g. a mounted imagePullSecret.
    docker_config_file: Path | None = None
    #: The Sigstore trusted root (trusted_root.json) keyless attestors are verified against.
    trusted_root_file: Path | None = None
    #: The part of a review's deadline registry reads may use.
    timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    tag_ttl_seconds: float = Field(default=30.0, ge=0, le=3600)
    negative_ttl_seconds: float = Field(default=10.0, ge=0, le=3600)
    max_manifest_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    max_blob_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    #: The mutating webhook pins tag-only images to the digest their tag points at now.
    resolve_tags: bool = False
    #: Record registry evidence that verified in the scribe, the first time the judge reads
    #: it (in the background; idempotent). See docs/registry.md.
    record_evidence: bool = False
    #: The project those occurrences go into (default: admission.project).
    record_project: str | None = None
    #: Read each pod's imagePullSecrets (and its ServiceAccount's) from this cluster.
    pull_secrets: ClusterAccessSettings | None = None


class VoucherSettings(BaseModel):
    """An attestor the server runs itself: it signs images whose scans pass ``policy_file``."""

    attestor_note: str  # projects/P/notes/N, the note of the attestor's Grafeas authority
    policy_file: Path
    key_file: Path  # a PEM private key; it stays in the server process
    key_id: str | None = None
    algorithm: str | None = None
    #: simple-signing, in-toto-vulns (a signed vulns v0.1 statement of the scan), or both
    format: str = "simple-signing"


class ScanningSettings(BaseModel):
    """chainproof's own scanner (OSV advisories matched against SBOM packages)."""

    #: The project holding the advisories as VULNERABILITY notes (projects/<this>/notes/<id>).
    provider_project: str = "osv"
    #: Match an image as soon as PACKAGE occurrences are written for it.
    scan_on_sbom: bool = True
    #: Automatic "not-vulnerable" attestors, run after every scan (see docs/scanning.md).
    vouchers: list[VoucherSettings] = []


class OidcIssuerSettings(BaseModel):
    """A trusted OIDC issuer (Dex, Keycloak, Google, GitHub Actions, a Kubernetes API server).

    Keys come from the issuer's discovery document unless ``jwks_uri`` or ``jwks_file`` says
    otherwise; ``ca_file`` verifies the issuer's TLS certificate (a cluster's CA, say).
    ``kind: kubernetes`` reads ServiceAccount tokens (member ``serviceAccount:NS:NAME``).
    """

    model_config = {"extra": "forbid"}

    issuer: str
    audiences: list[str] = Field(min_length=1)
    kind: Literal["oidc", "kubernetes"] = "oidc"
    jwks_uri: str | None = None
    jwks_file: Path | None = None
    ca_file: Path | None = None
    #: A token chainproof presents when fetching the discovery document and keys (a
    #: Kubernetes API server serves them only to authenticated ServiceAccounts by default).
    bearer_token_file: Path | None = None


class TokenReviewSettings(BaseModel):
    """Ask a Kubernetes API server (TokenReview) about bearer tokens no issuer claims."""

    model_config = {"extra": "forbid"}

    api_server: str
    #: chainproof's own credential for the API server (a projected ServiceAccount token).
    credential_file: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    ca_file: Path | None = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    audiences: list[str] = []


class SignInSettings(BaseModel):
    """Sign-in to the web UI through an OIDC issuer (authorization-code flow with PKCE).

    ``issuer`` must be one of ``auth.oidc_issuers`` and ``client_id`` one of its audiences:
    the ID token the issuer returns is verified exactly as a bearer token on the API is.
    A confidential client reads its secret from ``client_secret_file``; a public client
    (PKCE alone) leaves it unset. ``redirect_uri`` defaults to this server's
    ``/signin/callback`` as the browser addressed it; register that URI with the issuer.
    """

    model_config = {"extra": "forbid"}

    issuer: str
    client_id: str = Field(min_length=1)
    client_secret_file: Path | None = None
    scopes: list[str] = ["openid", "email", "profile"]
    redirect_uri: str | None = None


class AuthSettings(BaseModel):
    """Who may call chainproof. See docs/auth.md.

    On a loopback-only listener an anonymous caller is a local administrator. On any other
    address anonymous callers get only what IAM grants ``allUsers``, and the server refuses
    to start with no way to authenticate anyone unless ``allow_anonymous`` is set.
    """

    model_config = {"extra": "forbid"}

    oidc_issuers: list[OidcIssuerSettings] = []
    token_review: TokenReviewSettings | None = None
    #: Members with roles/chainproof.admin on every project (e.g. ``user:ops@example.com``).
    bootstrap_admins: list[str] = []
    #: Members that may call the admission webhooks (roles/chainproof.admissionCaller on
    #: admission.project): ``cert:kube-apiserver`` when the API server presents a client
    #: certificate, ``allUsers`` when it cannot authenticate (the webhook then still records
    #: nothing but the decision it was asked for).
    admission_callers: list[str] = []
    allow_anonymous: bool = False
    #: What an anonymous caller is: ``auto`` makes it a local administrator when the server
    #: listens on loopback only; ``none`` never does (set it when a reverse proxy on the same
    #: machine forwards other people's requests to a loopback port).
    anonymous: Literal["auto", "none"] = "auto"
    #: How long a verified bearer token is reused (never past its expiry).
    token_cache_seconds: float = Field(default=600, ge=0, le=86400)
    #: How long IAM policies are reused; changes through this replica apply at once.
    policy_cache_seconds: float = Field(default=5, ge=0, le=3600)
    #: OIDC sign-in for the web UI; unset, the sign-in page asks for a token.
    sign_in: SignInSettings | None = None

    @model_validator(mode="after")
    def _sign_in_issuer_is_trusted(self) -> AuthSettings:
        if self.sign_in is None:
            return self
        trusted = {i.issuer: i for i in self.oidc_issuers if i.kind == "oidc"}
        issuer = trusted.get(self.sign_in.issuer)
        if issuer is None:
            raise ValueError(
                f"auth.sign_in.issuer {self.sign_in.issuer!r} is not one of auth.oidc_issuers: "
                "the ID tokens it returns could not be verified"
            )
        if self.sign_in.client_id not in issuer.audiences:
            raise ValueError(
                f"auth.sign_in.client_id {self.sign_in.client_id!r} is not an audience of "
                f"issuer {issuer.issuer}: add it to that issuer's audiences"
            )
        return self


class ClusterSettings(BaseModel):
    """One Kubernetes cluster whose pods the inventory follows (docs/runtime.md).

    Exactly one way to connect: ``in_cluster`` (the pod's own ServiceAccount), a
    ``kubeconfig`` (and optional ``context``), or a ``url`` with a ``token_file`` and
    ``ca_file``. The name keys every inventory row of the cluster: choose it once.
    """

    model_config = {"extra": "forbid"}

    name: str
    in_cluster: bool = False
    kubeconfig: Path | None = None
    context: str | None = None
    url: str | None = None
    #: A file holding the bearer token (re-read on every start; never the token itself).
    token_file: Path | None = None
    ca_file: Path | None = None
    #: The project whose policy governs the cluster: it judges the running pods and holds
    #: their violations, and its members alone see what runs there (impact, replay,
    #: coverage). Unset: ``admission.project``.
    project: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> ClusterSettings:
        from chainproof.domain.inventory import validate_cluster_name

        try:
            validate_cluster_name(self.name)
        except InvalidArgument as exc:
            raise ValueError(exc.message) from None
        ways = [self.in_cluster, self.kubeconfig is not None, self.url is not None]
        if sum(ways) != 1:
            raise ValueError(
                f"cluster {self.name!r} needs exactly one way to connect: in_cluster: true, "
                "a kubeconfig, or a url (with token_file and ca_file)"
            )
        return self


class ContinuousValidationSettings(BaseModel):
    """Re-judging running pods when their evidence changes (docs/runtime.md)."""

    model_config = {"extra": "forbid"}

    #: Run the re-judging worker (on the leader replica only).
    enabled: bool = True
    #: How often the worker looks for new outbox events when idle.
    poll_seconds: float = Field(default=0.5, gt=0, le=60)
    #: Outbox events read per batch.
    batch_events: int = Field(default=2000, ge=1, le=100_000)
    #: Every running pod is judged again this often (and once when a replica starts to
    #: lead); 0 turns the periodic sweep off (the one at start stays).
    sweep_hours: float = Field(default=24.0, ge=0, le=24 * 366)
    #: Write a Kubernetes Event on the pod when a violation opens or closes (needs the
    #: chainproof-enforcer role in deploy/runtime/watcher-rbac.yaml).
    kubernetes_events: bool = False
    #: Annotate violating pods with ``chainproof.dev/violation`` (the violation's name).
    annotate_pods: bool = False
    #: Namespaces (per cluster: ``cluster/namespace``, or a bare namespace for every
    #: cluster) whose violating pods are evicted. Empty: nothing is ever evicted.
    evict_namespaces: list[str] = []
    #: Events, annotations and evictions that fail transiently (HTTP 429, 408, 5xx, a
    #: connection failure or timeout) are tried this many times in all; 403, 404, 422 and
    #: other refusals once. Every attempt is recorded in the violation.
    action_attempts: int = Field(default=4, ge=1, le=10)
    #: The wait after the first failure; it doubles after each one, up to the maximum (a
    #: server's Retry-After is honoured as given).
    action_retry_seconds: float = Field(default=0.5, ge=0, le=60)
    action_max_retry_seconds: float = Field(default=8.0, ge=0, le=600)
    #: One attempt's bound.
    action_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    #: Acting on the pods of one batch stops after this long, retries included: the worker
    #: never waits longer on a cluster.
    actions_budget_seconds: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _retry_bounds(self) -> ContinuousValidationSettings:
        if self.action_retry_seconds > self.action_max_retry_seconds:
            raise ValueError(
                "action_retry_seconds must not exceed action_max_retry_seconds "
                f"({self.action_retry_seconds} > {self.action_max_retry_seconds})"
            )
        return self


class RuntimeSettings(BaseModel):
    """What runs after admission: the clusters watched, and leadership between replicas."""

    model_config = {"extra": "forbid"}

    clusters: list[ClusterSettings] = []
    continuous_validation: ContinuousValidationSettings = ContinuousValidationSettings()
    #: How long one watch request lasts before the watcher asks again (the API server's
    #: ``timeoutSeconds``).
    watch_timeout_seconds: int = Field(default=240, ge=5, le=3600)
    #: How often a follower tries to become the leader, and the leader checks it still is.
    leader_check_seconds: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _unique_names(self) -> RuntimeSettings:
        names = [c.name for c in self.clusters]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"cluster names must be unique; given more than once: {twice}")
        return self


class OutboundSettings(BaseModel):
    """Where outgoing HTTP to hosts chosen by others (subscription URLs, registry hosts in
    pod specs, token realms) may go: domain/destinations.py, docs/configuration.md."""

    model_config = {"extra": "forbid"}

    #: Never to an address in these networks (every address a host resolves to, at each
    #: request).
    denied_networks: list[str] = Field(default_factory=lambda: list(DEFAULT_DENIED_NETWORKS))
    #: When set, only to addresses in these networks.
    allowed_networks: list[str] = Field(default_factory=list)

    @field_validator("denied_networks", "allowed_networks")
    @classmethod
    def _networks(cls, value: list[str], info: ValidationInfo) -> list[str]:
        try:
            parse_networks(value, f"outbound.{info.field_name}")
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from exc
        return value

    def destination_policy(self) -> DestinationPolicy:
        return DestinationPolicy.from_settings(self.denied_networks, self.allowed_networks)


class NotificationSettings(BaseModel):
    """Delivering outbox events to subscriptions (docs/runtime.md, "Notifications")."""

    model_config = {"extra": "forbid"}

    #: Run the notifier in this server (on the leader replica only).
    enabled: bool = True
    #: The CloudEvents ``source`` of every event; defaults to ``//chainproof/<host>:<port>``.
    source: str = ""
    #: How often the notifier looks for new events and due retries when idle.
    poll_seconds: float = Field(default=0.5, gt=0, le=60)
    #: The NATS servers subscriptions with a ``nats`` subject publish to.
    nats_servers: str = "nats://127.0.0.1:4222"
    http_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: Accept webhook URLs with plain http:// to hosts other than loopback (a network you
    #: trust); https:// otherwise.
    allow_plain_http: bool = False
    retry_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    retry_cap_seconds: float = Field(default=300.0, gt=0, le=86400)
    #: Attempts before an event goes to the subscription's dead-letter list.
    max_attempts: int = Field(default=12, ge=1, le=1000)
    #: Delivered events are forgotten this long after delivery (dead letters are kept).
    retention_hours: float = Field(default=168.0, gt=0, le=24 * 3650)
    #: A project may hold at most this many subscriptions (a bound: creating one more is
    #: refused, saying so).
    max_subscriptions_per_project: int = Field(default=100, ge=1, le=10_000)
    #: The key that seals webhook secrets in the database (AES-256-GCM, crypto/sealing.py):
    #: created on first use (mode 0600) when missing. Replicas sharing a database must share
    #: it; keep it out of the database's backups.
    secret_key_file: Path = Path("data/webhook-secret.key")
    #: Key files that open sealed webhook secrets but never seal (ADR 0213): during a key
    #: rotation, the old key (secrets sealed under it are sealed again under
    #: ``secret_key_file`` when a server opens), or the new key before any replica seals
    #: with it. Read only, never made: a missing or damaged one is an error naming it.
    extra_secret_key_files: list[Path] = Field(default_factory=list, max_length=16)


class Settings(BaseSettings):
    """Everything an operator can set. See docs/configuration.md for the full list."""

    model_config = SettingsConfigDict(
        env_prefix="CHAINPROOF_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    grpc_port: int = Field(default=8090, ge=0, le=65535)
    grpc_enabled: bool = True
    database_url: str = DEFAULT_SQLITE_URL
    #: Secret that authenticates page tokens. When unset, one is generated and kept in the
    #: database, so that every replica sharing the database accepts the same tokens.
    page_token_secret: SecretStr | None = None
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    tls: TLSSettings = TLSSettings()
    admission: AdmissionSettings = AdmissionSettings()
    registry: RegistrySettings = RegistrySettings()
    scanning: ScanningSettings = ScanningSettings()
    auth: AuthSettings = AuthSettings()
    decision_log: DecisionLogSettings = DecisionLogSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    notifications: NotificationSettings = NotificationSettings()
    outbound: OutboundSettings = OutboundSettings()

    def to_environment(self) -> dict[str, str]:
        """These settings as ``CHAINPROOF_…`` variables (for worker processes)."""
        env: dict[str, str] = {}

        def put(prefix: str, data: dict[str, Any]) -> None:
            for key, value in data.items():
                name = f"{prefix}{key.upper()}"
                if isinstance(value, dict):
                    put(name + "__", value)
                elif isinstance(value, list):
                    env[name] = json.dumps(value)  # pydantic-settings reads lists as JSON
                elif value is not None:
                    env[name] = str(value).lower() if isinstance(value, bool) else str(value)

        dumped = self.model_dump(mode="json")
        if self.page_token_secret is not None:
            dumped["page_token_secret"] = self.page_token_secret.get_secret_value()
        put("CHAINPROOF_", dumped)
        return env

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit values (CLI options, the config file) win over the environment.
        return (init_settings, env_settings)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidArgument(f"config file {path} is not valid {path.suffix[1:]}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidArgument(f"config file {path} must hold a mapping of settings at the top")
    return data


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from, in rising priority: defaults, the environment, the file, overrides.

    The file is ``config_file`` or ``$CHAINPROOF_CONFIG``; overrides whose value is None are
    ignored (they are CLI options the user did not give).
    """
    values: dict[str, Any] = {}
    path = config_file or (Path(p) if (p := os.environ.get("CHAINPROOF_CONFIG")) else None)
    if path is not None:
        values.update(_read_config_file(path))
    values.update({k: v for k, v in overrides.items() if v is not None})
    env_backup = os.environ.pop("CHAINPROOF_CONFIG", None)
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise InvalidArgument("invalid settings", details=problems) from exc
    finally:
        if env_backup is not None:
            os.environ["CHAINPROOF_CONFIG"] = env_backup
