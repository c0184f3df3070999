"""Sample rows of the runtime repositories, shared by their contract modules
(test_inventory_repository, test_outbox_repository, test_subscriptions_repository,
test_deliveries_repository, test_violations_repository)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chainproof.domain.events import ChangeEvent, EventType
from chainproof.domain.inventory import RunningContainer
from chainproof.policy.violations import CheckResult, ImageResult, Violation
from chainproof.store.runtime_port import DeliveryRecord, SubscriptionRecord

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def row(
    pod: str,
    container: str = "app",
    *,
    cluster: str = "prod",
    namespace: str = "shop",
    digest: str | None = D1,
    since: datetime = T0,
    uid: str = "",
    source: str = "watcher",
) -> RunningContainer:
    image = (
        f"registry.example/{container}@{digest}" if digest else f"registry.example/{container}:1"
    )
    return RunningContainer(
        cluster=cluster,
        namespace=namespace,
        workload_kind="Deployment",
        workload_name="web",
        pod=pod,
        pod_uid=uid or f"uid-{pod}",
        container=container,
        service_account="default",
        image_spec=f"registry.example/{container}:1",
        image_id=f"docker-pullable://registry.example/{container}@{digest}" if digest else "",
        digest=digest,
        image=image,
        since=since,
        source=source,
    )


class Boom(Exception):
    pass


def event(n: int, subject: str = "projects/p/occurrences/a", project: str = "p") -> ChangeEvent:
    return ChangeEvent(
        f"0190-{n:04d}",
        project,
        EventType.OCCURRENCE_CREATED,
        subject,
        T0 + timedelta(seconds=n),
        {"name": subject, "kind": "VULNERABILITY", "n": n},
    )


def subscription(project: str, sid: str, **kw: object) -> SubscriptionRecord:
    base = SubscriptionRecord(
        project,
        sid,
        ("occurrence",),
        ("dev.chainproof.occurrence.created",),
        {"http": {"url": "https://hooks.example/x", "secret": "whsec_abc"}},
        T0,
        "a hook",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def delivery(seq: int, subject: str = "s1", sid: str = "hook", **kw: object) -> DeliveryRecord:
    return replace(
        DeliveryRecord("p", sid, seq, f"e{seq}", subject, next_attempt=T0),
        **kw,  # type: ignore[arg-type]
    )


def violation(vid: str, pod: str, opened: datetime, **kw: object) -> Violation:
    image = ImageResult(
        "registry.example/web@" + D1,
        "app",
        "DENY",
        "CVE-2026-1 is CRITICAL",
        (
            CheckResult("no-critical", "vulnerabilities", "NON_CONFORMANT", "CVE-2026-1"),
            CheckResult("signed", "attested_by", "CONFORMANT", "signed by ci"),
        ),
    )
    base = Violation(
        vid,
        "p",
        "prod",
        "shop",
        pod,
        "Deployment",
        "web",
        (image,),
        "registry.example/web: CVE-2026-1 is CRITICAL",
        "occurrence projects/p/occurrences/x",
        opened,
    )
    return replace(base, **kw)  # type: ignore[arg-type]
