"""``chainproof webhook …``: install the admission webhook (certificates, manifests).

* ``certs``: a private CA and a serving certificate for the webhook's Service
  (``NAME.NS.svc``), issued by :mod:`chainproof.crypto.certificates`; the files are written
  here (private keys mode 0600), an existing CA in the directory is reused.
* ``manifest``: the ValidatingWebhookConfiguration (or with ``--mutating`` the
  MutatingWebhookConfiguration) rendered by :mod:`chainproof.domain.webhook_config`.

Both commands are offline: they talk to no server and no cluster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal, cast

import typer
import yaml

from chainproof.cli.output import errors
from chainproof.crypto.certificates import check_ca_bundle, issue_certificates
from chainproof.domain.webhook_config import webhook_configuration
from chainproof.errors import InvalidArgument
from chainproof.services.common import utc_now

app = typer.Typer(
    help="Install the Kubernetes admission webhook: serving certificates and manifests.",
    no_args_is_help=True,
)

CA_CERT, CA_KEY = "ca.crt", "ca.key"
#: The names a kubernetes.io/tls Secret uses, so `kubectl create secret tls` takes them as is.
SERVING_CERT, SERVING_KEY = "tls.crt", "tls.key"


def _write(path: Path, data: bytes, *, private: bool) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def read_ca_bundle(path: Path) -> bytes:
    """The PEM certificate(s) at ``path``; InvalidArgument unless it holds at least one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the CA bundle {path}: {exc.strerror}") from None
    return check_ca_bundle(data, str(path))


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
    with errors():
        issued = issue_certificates(
            service, namespace, days=days, extra_sans=tuple(san or ()), ca=ca, now=utc_now()
        )
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
    with errors():
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
    if output == "json":
        typer.echo(json.dumps(config, indent=2))
    else:
        typer.echo(yaml.safe_dump(config, sort_keys=False), nl=False)
