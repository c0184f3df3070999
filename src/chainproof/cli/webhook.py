"""``chainproof webhook …``: install the admission webhook (certificates, manifests).

* ``certs``: a private CA and a serving certificate for the webhook's Service
  (``NAME.NS.svc``), made with ``cryptography``; the API server checks the certificate against
  the ``caBundle`` of the webhook configuration and needs the DNS name in the subjectAltName.
* ``manifest``: the ValidatingWebhookConfiguration that makes the API server call chainproof
  for Pods and every pod-template workload.

Both commands are offline: they talk to no server and no cluster. The pure parts
(:func:`issue_certificates`, :func:`webhook_configuration`) are importable for tests and tools.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chainproof.errors import InvalidArgument

app = typer.Typer(
    help="Install the Kubernetes admission webhook: serving certificates and manifests.",
    no_args_is_help=True,
)

WEBHOOK_PATH = "/webhook/admission"
MUTATING_PATH = "/webhook/mutate"
CA_CERT, CA_KEY = "ca.crt", "ca.key"
#: The names a kubernetes.io/tls Secret uses, so `kubectl create secret tls` takes them as is.
SERVING_CERT, SERVING_KEY = "tls.crt", "tls.key"

#: What the webhook judges: every resource that carries a pod spec, per API group.
WORKLOAD_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # pods/ephemeralcontainers is how `kubectl debug` adds a container to a running pod.
    ("", "v1", ("pods", "pods/ephemeralcontainers", "replicationcontrollers")),
    ("apps", "v1", ("deployments", "replicasets", "statefulsets", "daemonsets")),
    ("batch", "v1", ("jobs", "cronjobs")),
)


# ----------------------------------------------------------------------------- certificates


@dataclass(frozen=True, slots=True)
class IssuedCertificates:
    ca_cert_pem: bytes
    ca_key_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_after: dt.datetime


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names a Service answers to inside the cluster, shortest first."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _validate_dns_label(value: str, what: str) -> str:
    label = value.strip()
    if not label or len(label) > 63 or not all(c.isalnum() or c == "-" for c in label):
        raise InvalidArgument(
            f"{what} {value!r} is not a Kubernetes name: expected lower-case letters, digits "
            "and '-', at most 63 characters (e.g. chainproof)"
        )
    if label != label.lower() or label.startswith("-") or label.endswith("-"):
        raise InvalidArgument(f"{what} {value!r} must be lower case and not start or end in '-'")
    return label


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _new_ca(now: dt.datetime, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chainproof webhook CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue_certificates(
    service: str,
    namespace: str,
    *,
    days: int = 365,
    extra_sans: tuple[str, ...] = (),
    ca: tuple[bytes, bytes] | None = None,
    ca_days: int = 3650,
    now: dt.datetime | None = None,
) -> IssuedCertificates:
    """A serving certificate for ``service.namespace.svc``, signed by ``ca`` or a new CA.

    ``ca`` is ``(certificate PEM, key PEM)``; reusing it on renewal keeps the ``caBundle`` of
    the webhook configuration valid. ``extra_sans`` may be DNS names or IP addresses.
    """
    service = _validate_dns_label(service, "service name")
    namespace = _validate_dns_label(namespace, "namespace")
    if not 1 <= days <= 3650:
        raise InvalidArgument(f"--days must be between 1 and 3650, got {days}")
    now = now or dt.datetime.now(dt.UTC)
    if ca is None:
        ca_cert, ca_key = _new_ca(now, ca_days)
    else:
        try:
            ca_cert = x509.load_pem_x509_certificate(ca[0])
            loaded = serialization.load_pem_private_key(ca[1], password=None)
        except ValueError as exc:
            raise InvalidArgument(f"the existing CA cannot be read: {exc}") from None
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise InvalidArgument(
                "the existing CA key is not an EC key: delete it to make a new CA"
            )
        ca_key = loaded
        if ca_cert.not_valid_after_utc <= now + dt.timedelta(days=days):
            raise InvalidArgument(
                f"the existing CA expires on {ca_cert.not_valid_after_utc:%Y-%m-%d}, before the "
                "serving certificate would: use --new-ca (and re-apply the manifest)"
            )

    dns: list[str] = service_dns_names(service, namespace)
    ips: list[str] = []
    for san in extra_sans:
        value = san.strip()
        if not value:
            continue
        try:
            ips.append(str(ipaddress.ip_address(value)))
        except ValueError:
            dns.append(value)
    dns = list(dict.fromkeys(dns))
    ips = list(dict.fromkeys(ips))

    key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + dt.timedelta(days=days)
    alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    alt_names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[2])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return IssuedCertificates(
        ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        ca_key_pem=_private_pem(ca_key),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=_private_pem(key),
        dns_names=tuple(dns),
        ip_addresses=tuple(ips),
        not_after=not_after,
    )


def _write(path: Path, data: bytes, *, private: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


# ----------------------------------------------------------------------------- manifest


def read_ca_bundle(path: Path) -> bytes:
    """The PEM certificate(s) at ``path``; InvalidArgument unless it holds at least one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the CA bundle {path}: {exc.strerror}") from None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise InvalidArgument(
            f"{path} holds no PEM certificate: pass the ca.crt written by "
            "`chainproof webhook certs`"
        )
    return data


def webhook_configuration(
    *,
    service: str,
    namespace: str,
    ca_bundle: bytes,
    name: str = "chainproof",
    failure_policy: Literal["Fail", "Ignore"] = "Fail",
    timeout_seconds: int = 5,
    side_effects: Literal["None", "NoneOnDryRun"] = "NoneOnDryRun",
    port: int = 443,
    path: str = WEBHOOK_PATH,
    exclude_namespaces: tuple[str, ...] = (),
    mutating: bool = False,
) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration (admissionregistration.k8s.io/v1) as a mapping, or
    with ``mutating`` the MutatingWebhookConfiguration that pins tags to digests."""
    service = _validate_dns_label(service, "service name")
    namespace = _validate_dns_label(namespace, "namespace")
    if not 1 <= timeout_seconds <= 30:
        raise InvalidArgument(
            f"--timeout-seconds must be between 1 and 30 (the API server's limit), "
            f"got {timeout_seconds}"
        )
    skipped = list(dict.fromkeys(("kube-system", namespace, *exclude_namespaces)))
    rules = [
        {
            "apiGroups": [group],
            "apiVersions": [version],
            "operations": ["CREATE", "UPDATE"],
            "resources": list(resources),
            "scope": "Namespaced",
        }
        for group, version, resources in WORKLOAD_RULES
    ]
    if mutating and path == WEBHOOK_PATH:
        path = MUTATING_PATH
    webhook: dict[str, Any] = {
        "name": "resolve.chainproof.dev" if mutating else "admission.chainproof.dev",
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": {
            "service": {
                "name": service,
                "namespace": namespace,
                "path": path,
                "port": port,
            },
            "caBundle": base64.b64encode(ca_bundle).decode(),
        },
        "rules": rules,
        # Never let chainproof judge its own pods (it could not start to admit
        # itself) or the control plane's.
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": skipped,
                }
            ]
        },
        "failurePolicy": failure_policy,
        "matchPolicy": "Equivalent",
        "sideEffects": side_effects,
        "timeoutSeconds": timeout_seconds,
    }
    if mutating:
        # Pinning is idempotent, and a later mutating webhook (a sidecar injector) may add a
        # container with a tag: ask to be called again after it.
        webhook["reinvocationPolicy"] = "IfNeeded"
        webhook["sideEffects"] = "None"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration" if mutating else "ValidatingWebhookConfiguration",
        "metadata": {
            "name": f"{name}-resolve" if mutating else name,
            "labels": {"app.kubernetes.io/name": "chainproof"},
        },
        "webhooks": [webhook],
    }


# ----------------------------------------------------------------------------- commands


def _fail(exc: InvalidArgument) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


@app.command()
def certs(
    service: Annotated[str, typer.Option(help="The webhook's Service name, e.g. chainproof.")],
    namespace: Annotated[str, typer.Option(help="The Service's namespace, e.g. chainproof.")],
    out: Annotated[
        Path,
        typer.Option(help="Directory for ca.crt, ca.key, tls.crt, tls.key (created if missing)."),
    ],
    days: Annotated[int, typer.Option(help="Validity of the serving certificate, in days.")] = 365,
    san: Annotated[
        list[str] | None,
        typer.Option(
            "--san", help="Another DNS name or IP address for the certificate (repeatable)."
        ),
    ] = None,
    new_ca: Annotated[
        bool,
        typer.Option(
            "--new-ca",
            help="Make a new CA even if DIR holds one (the manifest's caBundle must then be "
            "re-applied). By default an existing ca.crt/ca.key is reused.",
        ),
    ] = False,
) -> None:
    """Create a CA and a serving certificate for NAME.NS.svc (ECDSA P-256).

    The serving certificate names NAME, NAME.NS, NAME.NS.svc and NAME.NS.svc.cluster.local
    (plus every --san). Load it into the cluster as a TLS Secret:

        kubectl -n NS create secret tls chainproof-tls --cert=DIR/tls.crt --key=DIR/tls.key
    """
    ca: tuple[bytes, bytes] | None = None
    ca_cert, ca_key = out / CA_CERT, out / CA_KEY
    if not new_ca and ca_cert.exists() and ca_key.exists():
        ca = (ca_cert.read_bytes(), ca_key.read_bytes())
    try:
        issued = issue_certificates(
            service, namespace, days=days, extra_sans=tuple(san or ()), ca=ca
        )
    except InvalidArgument as exc:
        raise _fail(exc) from None
    out.mkdir(parents=True, exist_ok=True)
    if ca is None:
        _write(ca_key, issued.ca_key_pem, private=True)
        _write(ca_cert, issued.ca_cert_pem, private=False)
    _write(out / SERVING_KEY, issued.key_pem, private=True)
    _write(out / SERVING_CERT, issued.cert_pem, private=False)
    names = ", ".join((*issued.dns_names, *issued.ip_addresses))
    typer.echo(f"{'reused' if ca else 'created'} CA        {ca_cert}")
    typer.echo(f"created serving cert {out / SERVING_CERT} (key {out / SERVING_KEY})")
    typer.echo(f"  names: {names}")
    typer.echo(f"  valid until {issued.not_after:%Y-%m-%d %H:%M} UTC")
    typer.echo("next:")
    typer.echo(
        f"  kubectl -n {namespace} create secret tls chainproof-tls "
        f"--cert={out / SERVING_CERT} --key={out / SERVING_KEY}"
    )
    typer.echo(
        f"  chainproof webhook manifest --service {service} --namespace {namespace} "
        f"--ca-bundle {ca_cert} | kubectl apply -f -"
    )


@app.command()
def manifest(
    service: Annotated[str, typer.Option(help="The webhook's Service name.")],
    namespace: Annotated[str, typer.Option(help="The Service's namespace (never judged).")],
    ca_bundle: Annotated[
        Path,
        typer.Option("--ca-bundle", help="PEM CA certificate that signed the serving cert."),
    ],
    failure_policy: Annotated[
        str,
        typer.Option(
            "--failure-policy",
            help="Fail: the API server refuses workloads when chainproof cannot be reached. "
            "Ignore admits them unjudged.",
        ),
    ] = "Fail",
    timeout_seconds: Annotated[
        int,
        typer.Option(
            "--timeout-seconds",
            help="How long the API server waits (1-30); keep it above "
            "admission.deadline_seconds (3 s by default).",
        ),
    ] = 5,
    side_effects: Annotated[
        str,
        typer.Option(
            "--side-effects",
            help="NoneOnDryRun (default: chainproof records DEPLOYMENT occurrences, never for "
            "dry-run requests) or None.",
        ),
    ] = "NoneOnDryRun",
    name: Annotated[str, typer.Option(help="metadata.name of the configuration.")] = "chainproof",
    exclude_namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude-namespace",
            help="Another namespace never judged (repeatable); kube-system and NS always are.",
        ),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="yaml or json.")] = "yaml",
    mutating: Annotated[
        bool,
        typer.Option(
            "--mutating",
            help="Print the MutatingWebhookConfiguration (/webhook/mutate) that pins tag-only "
            "images to repo:tag@sha256:… instead (needs registry.resolve_tags on the server).",
        ),
    ] = False,
) -> None:
    """Print the ValidatingWebhookConfiguration that sends workloads to chainproof.

    With --mutating, the MutatingWebhookConfiguration that resolves tags to digests first.

    Pipe it to `kubectl apply -f -`. Pods, Deployments, ReplicaSets, StatefulSets, DaemonSets,
    Jobs, CronJobs and ReplicationControllers are judged on CREATE and UPDATE in every
    namespace except kube-system and chainproof's own.
    """
    try:
        if failure_policy not in ("Fail", "Ignore"):
            raise InvalidArgument(
                f"--failure-policy must be Fail or Ignore, got {failure_policy!r}"
            )
        if side_effects not in ("None", "NoneOnDryRun"):
            raise InvalidArgument(
                f"--side-effects must be None or NoneOnDryRun, got {side_effects!r}"
            )
        if output not in ("yaml", "json"):
            raise InvalidArgument(f"--output must be yaml or json, got {output!r}")
        config = webhook_configuration(
            service=service,
            namespace=namespace,
            ca_bundle=read_ca_bundle(ca_bundle),
            name=name,
            failure_policy=cast(Literal["Fail", "Ignore"], failure_policy),
            timeout_seconds=timeout_seconds,
            side_effects=cast(Literal["None", "NoneOnDryRun"], side_effects),
            exclude_namespaces=tuple(exclude_namespace or ()),
            mutating=mutating,
        )
    except InvalidArgument as exc:
        raise _fail(exc) from None
    if output == "json":
        typer.echo(json.dumps(config, indent=2))
    else:
        typer.echo(yaml.safe_dump(config, sort_keys=False), nl=False)
