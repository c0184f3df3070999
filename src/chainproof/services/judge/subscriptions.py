"""Subscriptions as resources: who gets which outbox events, and where.

Owns the rules of ``projects/{p}/subscriptions/{id}``: reading a request body into a
subscription (an HTTP webhook with its HMAC secret, or a NATS JetStream subject), the event
filter (kinds and event types, checked against the vocabulary in ``domain.events``), the
per-project bound, the JSON answers, and the delivery log of each subscription (its dead
letters). A webhook secret chainproof generates is shown once, in the answer to the
create; it is never shown again (get and list leave every secret out). It is stored sealed
(``http.sealedSecret``, AES-256-GCM under ``notifications.secret_key_file``, bound to the
subscription's name: crypto/sealing.py), never as given; :func:`webhook_secret` opens it for
the notifier. Rows written before sealing hold ``http.secret`` in clear: they still
deliver, and :meth:`SubscriptionService.reseal` (run as the server opens) seals them, and
seals again under the current key what an extra key of a rotation sealed (ADR 0213).

Delivery itself is the notifier's (services/notifier.py); this module only stores what the
notifier reads.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import structlog

from chainproof.config import NotificationSettings, OutboundSettings
from chainproof.crypto.sealing import NONCE_BYTES, SealError, is_sealed, sealed_key_id
from chainproof.domain import webhook_signature
from chainproof.domain.destinations import DestinationPolicy, literal_address
from chainproof.domain.events import EventType, SubscriptionFilter
from chainproof.domain.names import parse_project_name, validate_resource_id
from chainproof.domain.timestamps import rfc3339
from chainproof.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from chainproof.services.common import utc_now
from chainproof.services.secret_key_file import SecretKeyFile
from chainproof.store.port import MetadataStore
from chainproof.store.runtime_port import DeliveryRecord, SubscriptionRecord

_FIELDS = ("description", "kinds", "eventTypes", "http", "nats")
_NATS_SUBJECT = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_MAX_URL = 2048
_MAX_DESCRIPTION = 1000
_MAX_SUBJECT = 255
DELIVERY_STATES = ("pending", "delivered", "dead")
_PREFIX = "dev.chainproof."

log = structlog.get_logger("chainproof.subscriptions")


def _short(event_type: str) -> str:
    return event_type.removeprefix(_PREFIX)


def _strings(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{key} must be a list of strings")
    if len(value) > 64:
        raise InvalidArgument(f"{key} takes at most 64 entries; {len(value)} were given")
    return [v.strip() for v in value if v.strip()]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http_sink(
    spec: Any, allow_plain_http: bool, destinations: DestinationPolicy
) -> tuple[dict[str, str], str | None]:
    """The stored sink and the secret to show once (None when the caller chose it)."""
    if not isinstance(spec, dict) or set(spec) - {"url", "secret"}:
        raise InvalidArgument('http must be {"url": "https://…", "secret": "whsec_…"}')
    url = spec.get("url")
    if not isinstance(url, str) or not url.strip():
        raise InvalidArgument("http.url is required: the URL chainproof POSTs each event to")
    url = url.strip()
    if len(url) > _MAX_URL:
        raise InvalidArgument(f"http.url is longer than {_MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"http.url {url!r} is not an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument(
            "http.url must not carry a user name or password: receivers authenticate "
            "chainproof by the HMAC signature of each body (http.secret)"
        )
    if parts.fragment:
        raise InvalidArgument("http.url must not have a #fragment (it is never sent)")
    if parts.scheme == "http" and not (allow_plain_http or _is_loopback(parts.hostname)):
        raise InvalidArgument(
            f"http.url {url!r} is plain http: events would cross the network unencrypted. "
            "Use https://, or a loopback receiver; set notifications.allow_plain_http to "
            "accept plain http on a network you trust"
        )
    literal = literal_address(parts.hostname)
    why = destinations.refusal(literal) if literal is not None else None
    if why is not None:
        # Names are checked again on every delivery, on what they resolve to then.
        raise InvalidArgument(f"http.url {url!r} may not be a delivery target: {why}")
    secret = spec.get("secret")
    shown: str | None = None
    if secret is None or secret == "":
        secret = shown = webhook_signature.new_secret()
    elif not isinstance(secret, str):
        raise InvalidArgument("http.secret must be a string (whsec_ then base64)")
    else:
        webhook_signature.check_secret(secret)
    return {"url": url, "secret": secret}, shown


def _nats_sink(spec: Any) -> dict[str, str]:
    if not isinstance(spec, dict) or set(spec) != {"subject"}:
        raise InvalidArgument(
            'nats must be {"subject": "…"}; the NATS servers are the server\'s own '
            "(notifications.nats_servers)"
        )
    subject = spec["subject"]
    if (
        not isinstance(subject, str)
        or len(subject) > _MAX_SUBJECT
        or not _NATS_SUBJECT.fullmatch(subject)
    ):
        raise InvalidArgument(
            f"nats.subject {subject!r} is not a NATS subject to publish to: expected tokens of "
            "letters, digits, '_' or '-' separated by '.', no wildcards, at most "
            f"{_MAX_SUBJECT} characters (e.g. chainproof.events.prod)"
        )
    return {"subject": subject}


def webhook_secret(record: SubscriptionRecord, keys: SecretKeyFile) -> str:
    """The HMAC secret of ``record``'s http sink, opened; :class:`SealError` saying why not
    (another key, a row copied from another subscription, tampering)."""
    http: Any = record.sink["http"]
    sealed = http.get("sealedSecret")
    if sealed is None:
        return str(http["secret"])  # written before secrets were sealed
    name = f"projects/{record.project}/subscriptions/{record.subscription_id}"
    return keys.ring().open(str(sealed), name)


def subscription_json(record: SubscriptionRecord, *, secret: str | None = None) -> dict[str, Any]:
    """The resource as the API shows it; ``secret`` only in the answer to a create."""
    out: dict[str, Any] = {
        "name": f"projects/{record.project}/subscriptions/{record.subscription_id}",
        "description": record.description,
        "kinds": list(record.kinds),
        "eventTypes": [_short(t) for t in record.types],
        "createTime": rfc3339(record.create_time),
    }
    sink: Any = record.sink
    if "http" in sink:
        out["http"] = {"url": sink["http"]["url"]}
        if secret is not None:
            out["http"]["secret"] = secret
    elif "nats" in sink:
        out["nats"] = {"subject": sink["nats"]["subject"]}
    else:
        out["internal"] = str(sink.get("internal", ""))
    return out


def delivery_json(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "eventId": record.event_id,
        "sequence": record.sequence,
        "subject": record.subject,
        "state": record.status,
        "attempts": record.attempts,
        "nextAttemptTime": rfc3339(record.next_attempt)
        if record.next_attempt and record.status == "pending"
        else None,
        "lastError": record.last_error,
        "doneTime": rfc3339(record.done_time) if record.done_time else None,
    }


def _parse_name(name: str) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != "subscriptions":
        raise InvalidArgument(
            f"{name!r} is not a subscription name: expected projects/PROJECT/subscriptions/ID"
        )
    project = parse_project_name(f"projects/{parts[1]}")
    return project, validate_resource_id(parts[3], what="subscription ID")


@dataclass
class ResealReport:
    """What :meth:`SubscriptionService.reseal` found and did: secrets already under the
    current key, sealed from clear, sealed again under the current key, and left alone (per
    key ID not held; not opening)."""

    current: int = 0
    sealed: int = 0
    resealed: int = 0
    unknown: dict[str, int] = field(default_factory=dict)
    unopenable: int = 0


class SubscriptionService:
    def __init__(
        self,
        store: MetadataStore,
        settings: NotificationSettings,
        clock: Callable[[], datetime] = utc_now,
        destinations: DestinationPolicy | None = None,
        keys: SecretKeyFile | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._keys = keys or SecretKeyFile(
            settings.secret_key_file, settings.extra_secret_key_files
        )
        self._destinations = destinations or OutboundSettings().destination_policy()
        self._clock = clock

    def _read(
        self, project: str, subscription_id: str, body: Any
    ) -> tuple[SubscriptionRecord, str | None]:
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object (a subscription)")
        unknown = set(body) - set(_FIELDS) - {"name"}
        if unknown:
            raise InvalidArgument(
                f"unknown fields {', '.join(sorted(unknown))}: expected {', '.join(_FIELDS)}"
            )
        name = f"projects/{project}/subscriptions/{subscription_id}"
        if body.get("name") not in (None, "", name):
            raise InvalidArgument(f"name {body.get('name')!r} does not match {name!r}")
        description = body.get("description", "")
        if not isinstance(description, str) or len(description) > _MAX_DESCRIPTION:
            raise InvalidArgument(
                f"description must be a string of at most {_MAX_DESCRIPTION} characters"
            )
        kinds = list(dict.fromkeys(_strings(body, "kinds")))
        types = _strings(body, "eventTypes")
        wanted = SubscriptionFilter.build(kinds, types)
        if wanted.kinds:
            stray = sorted(
                _short(t.value) for t in wanted.types if t.resource_kind not in wanted.kinds
            )
            if stray:
                raise InvalidArgument(
                    f"eventTypes {', '.join(stray)} are of kinds not in kinds "
                    f"({', '.join(kinds)}): such a subscription would never receive them; "
                    "add their kinds, or leave kinds empty"
                )
        ordered = sorted(wanted.types, key=list(EventType).index)
        sinks = [k for k in ("http", "nats") if body.get(k) is not None]
        if len(sinks) != 1:
            raise InvalidArgument(
                'a subscription needs exactly one destination: "http": {"url", "secret"} or '
                '"nats": {"subject"}'
            )
        shown: str | None = None
        if sinks == ["http"]:
            http, shown = _http_sink(
                body["http"], self._settings.allow_plain_http, self._destinations
            )
            sealed = self._seal(http["secret"], name)
            sink: dict[str, Any] = {"http": {"url": http["url"], "sealedSecret": sealed}}
        else:
            sink = {"nats": _nats_sink(body["nats"])}
        record = SubscriptionRecord(
            project,
            subscription_id,
            tuple(kinds),
            tuple(t.value for t in ordered),
            sink,
            self._clock(),
            description,
        )
        return record, shown

    def _seal(self, secret: str, name: str) -> str:
        try:
            return self._keys.ring().seal(secret, name, os.urandom(NONCE_BYTES))
        except SealError as exc:
            # Fail closed: without its key the server stores no secret at all.
            raise Unavailable(f"webhook secrets cannot be sealed: {exc}") from exc

    async def reseal(self) -> ResealReport:
        """Bring every stored webhook secret under the sealing key, in one transaction (run
        as the server opens): rows written before sealing (``http.secret`` in clear) are
        sealed, and secrets sealed under an extra key (``extra_secret_key_files``: a
        rotation's old key) are opened and sealed again under ``secret_key_file``. Secrets
        under a key this server does not hold, or that do not open, are left as they are
        and counted, and the log names their keys. Without a usable key nothing changes
        (clear rows still deliver), and the log says why."""
        report = ResealReport()
        async with self._store.session() as s:
            rows = await s.subscriptions.list_rows(None)
            webhooks = [r for r in rows if isinstance(r.sink.get("http"), dict)]
            if not webhooks:
                return report
            try:
                ring = self._keys.ring()
            except SealError as exc:
                clear = sum("secret" in r.sink["http"] for r in webhooks)
                if clear:
                    log.warning("webhook secrets left unsealed", count=clear, why=str(exc))
                return report
            changed = []
            for r in webhooks:
                http = dict(r.sink["http"])
                name = f"projects/{r.project}/subscriptions/{r.subscription_id}"
                if "secret" in http:
                    http["sealedSecret"] = self._seal(str(http.pop("secret")), name)
                    report.sealed += 1
                elif is_sealed(token := http.get("sealedSecret")):
                    try:
                        kid = sealed_key_id(str(token))
                    except SealError as exc:  # a damaged row must not stop the server opening
                        log.warning("webhook secret does not open", subscription=name, why=str(exc))
                        report.unopenable += 1
                        continue
                    if not ring.stale(str(token)):
                        if kid == ring.key_id:
                            report.current += 1
                        else:
                            report.unknown[kid] = report.unknown.get(kid, 0) + 1
                        continue
                    try:
                        secret = ring.open(str(token), name)
                    except SealError as exc:  # moved from another row, or altered
                        log.warning("webhook secret does not open", subscription=name, why=str(exc))
                        report.unopenable += 1
                        continue
                    http["sealedSecret"] = self._seal(secret, name)
                    report.resealed += 1
                else:
                    continue
                changed.append(replace(r, sink={**r.sink, "http": http}))
            for r in changed:
                await s.subscriptions.put(r)
        # Always said, so that an operator rotating the key can see when nothing is left
        # under the old one (sealed_again=0, no other key).
        log.info(
            "webhook secrets checked",
            key_id=ring.key_id,
            already_current=report.current,
            sealed_from_clear=report.sealed,
            sealed_again=report.resealed,
            other_keys=dict(sorted(report.unknown.items())),
            unopenable=report.unopenable,
        )
        if report.unknown:
            log.warning(
                "webhook secrets sealed under keys this server does not hold",
                keys=dict(sorted(report.unknown.items())),
                hint="they cannot be delivered: add the key to "
                "notifications.extra_secret_key_files, or re-create those subscriptions",
            )
        return report

    async def create(self, parent: str, subscription_id: str, body: Any) -> dict[str, Any]:
        project = parse_project_name(parent)
        if not subscription_id:
            raise InvalidArgument("subscriptionId is required: the client chooses subscription IDs")
        validate_resource_id(subscription_id, what="subscription ID")
        record, shown = self._read(project, subscription_id, body)
        limit = self._settings.max_subscriptions_per_project
        async with self._store.session() as s:
            subs = s.subscriptions
            if await subs.get(project, subscription_id) is not None:
                raise AlreadyExists(
                    f"subscription projects/{project}/subscriptions/{subscription_id} "
                    "already exists"
                )
            if len(await subs.list_rows(project)) >= limit:
                raise FailedPrecondition(
                    f"projects/{project} holds {limit} subscriptions already, the most "
                    "allowed (notifications.max_subscriptions_per_project): delete one first"
                )
            await subs.put(record)
        return subscription_json(record, secret=shown)

    async def get(self, name: str) -> dict[str, Any]:
        project, subscription_id = _parse_name(name)
        async with self._store.session(readonly=True) as s:
            record = await s.subscriptions.get(project, subscription_id)
        if record is None:
            raise NotFound(f"subscription {name} does not exist")
        return subscription_json(record)

    async def list_subscriptions(
        self, parent: str, *, kind: str | None = None, event_type: str | None = None
    ) -> list[dict[str, Any]]:
        """The project's subscriptions; with ``kind`` or ``event_type``, only those that
        would receive such events."""
        project = parse_project_name(parent)
        probe_kind = None
        if kind:
            SubscriptionFilter.build([kind], [])  # names the known kinds when unknown
            probe_kind = kind.strip()
        probe_type = EventType.parse(event_type.strip()) if event_type else None
        if probe_kind and probe_type and probe_type.resource_kind != probe_kind:
            raise InvalidArgument(
                f"eventType {_short(probe_type.value)} is not of kind {probe_kind}"
            )
        async with self._store.session(readonly=True) as s:
            rows = await s.subscriptions.list_rows(project)
        out = []
        for r in rows:
            f = SubscriptionFilter.build(r.kinds, r.types)
            if probe_kind and f.kinds and probe_kind not in f.kinds:
                continue
            if probe_kind and f.types and not any(t.resource_kind == probe_kind for t in f.types):
                continue
            if probe_type and not (
                (not f.kinds or probe_type.resource_kind in f.kinds)
                and (not f.types or probe_type in f.types)
            ):
                continue
            out.append(subscription_json(r))
        return out

    async def delete(self, name: str) -> None:
        project, subscription_id = _parse_name(name)
        async with self._store.session() as s:
            if not await s.subscriptions.delete(project, subscription_id):
                raise NotFound(f"subscription {name} does not exist")

    async def deliveries(
        self, name: str, *, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The subscription's deliveries in event order; ``state=dead`` is its dead-letter
        list."""
        project, subscription_id = _parse_name(name)
        if state is not None and state not in DELIVERY_STATES:
            raise InvalidArgument(f"state {state!r} is not one of {', '.join(DELIVERY_STATES)}")
        if not 1 <= limit <= 1000:
            raise InvalidArgument(f"pageSize must be between 1 and 1000, got {limit}")
        async with self._store.session(readonly=True) as s:
            if await s.subscriptions.get(project, subscription_id) is None:
                raise NotFound(f"subscription {name} does not exist")
            rows = await s.deliveries.list_rows(project, subscription_id, state, limit)
        return [delivery_json(r) for r in rows]
