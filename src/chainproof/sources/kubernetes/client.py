"""Building a kubernetes_asyncio API client for one named cluster.

Three ways, in the order operators reach for them: in-cluster (the pod's ServiceAccount
token and CA), a kubeconfig file and context, or an explicit URL + bearer token + CA (what
the tests use). Nothing here connects; the client connects on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config


@dataclass(frozen=True, slots=True)
class ClusterConnection:
    """How to reach one cluster; exactly one of the three ways is used."""

    name: str
    in_cluster: bool = False
    kubeconfig: Path | None = None
    context: str | None = None
    url: str | None = None
    token: str | None = None
    ca_file: Path | None = None


async def api_client(conn: ClusterConnection) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    if conn.in_cluster:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    elif conn.kubeconfig is not None:
        await k8s_config.load_kube_config(
            config_file=str(conn.kubeconfig),
            context=conn.context,
            client_configuration=configuration,
        )
    elif conn.url:
        configuration.host = conn.url
        if conn.token:
            configuration.api_key = {"BearerToken": conn.token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        if conn.ca_file is not None:
            configuration.ssl_ca_cert = str(conn.ca_file)
    else:
        raise ValueError(
            f"cluster {conn.name!r} has no connection: expected in-cluster, a kubeconfig or a URL"
        )
    return k8s.ApiClient(configuration)
