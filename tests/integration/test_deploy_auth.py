"""The deploy/ manifests configure authentication that chainproof accepts: the ConfigMap's
settings load, pass the secure-by-default start-up check, and name files the Deployment
mounts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from chainproof.config import load_settings
from chainproof.services.access.setup import authentication_configured, check_listener

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _objects() -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {}
    for path in sorted(DEPLOY.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and "metadata" in doc:
                out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def test_deployed_settings_authenticate_and_start() -> None:
    objects = _objects()
    config = objects[("ConfigMap", "chainproof-config")]["data"]
    saved = dict(os.environ)
    try:
        os.environ.update({k: v for k, v in config.items() if k.startswith("CHAINPROOF_")})
        settings = load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert settings.host == "0.0.0.0"  # noqa: S104 - in the pod
    assert authentication_configured(settings)
    check_listener(settings)  # would raise if the pod could not start
    [issuer] = settings.auth.oidc_issuers
    assert issuer.kind == "kubernetes" and issuer.audiences == ["chainproof"]
    assert settings.auth.admission_callers == ["allUsers"]
    assert json.loads(config["CHAINPROOF_AUTH__BOOTSTRAP_ADMINS"]) == [
        "serviceAccount:chainproof:chainproof-admin"
    ]
    assert ("ServiceAccount", "chainproof-admin") in objects

    pod = objects[("Deployment", "chainproof")]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "kube")["mountPath"]
    assert str(issuer.ca_file) == f"{mount}/ca.crt"
    assert str(issuer.bearer_token_file) == f"{mount}/token"
    kube = next(v for v in pod["volumes"] if v["name"] == "kube")["projected"]["sources"]
    assert {"serviceAccountToken", "configMap"} == {next(iter(s)) for s in kube}
