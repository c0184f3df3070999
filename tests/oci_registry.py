"""A real OCI registry for the test suite: Debian's docker-registry, fed by umoci and skopeo.

``ensure_tools`` installs ``docker-registry``, ``skopeo`` and ``umoci`` with apt when one is
missing (tests run as root on a fresh machine or CI). ``start_registry`` runs the registry on
a free loopback port with its storage in a temporary directory; :class:`OciRegistry` pushes
images from umoci layouts with skopeo and writes manifests and blobs through the distribution
API, the way cosign lays out signatures (no cosign binary can be installed here). No pytest in
this module; fixtures live in tests/conftest.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TOOLS = {"docker-registry": "docker-registry", "skopeo": "skopeo", "umoci": "umoci"}


def ensure_tools() -> str | None:
    """None when every tool is there (installing what is missing), else why not."""
    missing = [pkg for binary, pkg in TOOLS.items() if shutil.which(binary) is None]
    if not missing:
        return None
    result = subprocess.run(
        ["apt-get", "install", "-y", "-q", *missing],
        capture_output=True,
        text=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    if result.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
        result = subprocess.run(
            ["apt-get", "install", "-y", "-q", *missing],
            capture_output=True,
            text=True,
            check=False,
        )
    still = [b for b in TOOLS if shutil.which(b) is None]
    if still:
        return f"cannot install {', '.join(still)} with apt: {result.stderr.strip()[-300:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Pusher:
    """Writes blobs and manifests to any registry over the distribution API (plain HTTP)."""

    def __init__(self, host: str, auth: tuple[str, str] | None = None) -> None:
        self.host = host
        self.auth = auth
        self.http = httpx.Client(base_url=f"http://{host}", timeout=10, auth=auth)

    # -- the distribution API ------------------------------------------------------------

    def head_digest(self, repository: str, reference: str) -> str:
        response = self.http.head(
            f"/v2/{repository}/manifests/{reference}",
            headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json, "
                "application/vnd.oci.image.index.v1+json, "
                "application/vnd.docker.distribution.manifest.v2+json"
            },
        )
        response.raise_for_status()
        return str(response.headers["Docker-Content-Digest"])

    def push_blob(self, repository: str, data: bytes) -> str:
        digest = sha256(data)
        start = self.http.post(f"/v2/{repository}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = start.headers["Location"]
        separator = "&" if "?" in location else "?"
        done = self.http.put(
            f"{location}{separator}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        return digest

    def push_manifest(self, repository: str, reference: str, manifest: dict[str, Any]) -> str:
        body = json.dumps(manifest, separators=(",", ":")).encode()
        response = self.http.put(
            f"/v2/{repository}/manifests/{reference}",
            content=body,
            headers={"Content-Type": manifest["mediaType"]},
        )
        assert response.status_code == 201, response.text
        return sha256(body)

    def push_artifact_manifest(
        self,
        repository: str,
        reference: str,
        layers: list[tuple[bytes, str, dict[str, str]]],
        *,
        subject: dict[str, Any] | None = None,
        artifact_type: str | None = None,
    ) -> str:
        """A manifest with an empty config and these (content, media type, annotations) layers."""
        config = b"{}"
        config_digest = self.push_blob(repository, config)
        descriptors = []
        for content, media_type, notes in layers:
            digest = self.push_blob(repository, content)
            entry: dict[str, Any] = {
                "mediaType": media_type,
                "digest": digest,
                "size": len(content),
            }
            if notes:
                entry["annotations"] = notes
            descriptors.append(entry)
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json"
                if artifact_type is None
                else "application/vnd.oci.empty.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": descriptors,
        }
        if subject is not None:
            manifest["subject"] = subject
        if artifact_type is not None:
            manifest["artifactType"] = artifact_type
        return self.push_manifest(repository, reference, manifest)

    def manifest_descriptor(self, repository: str, digest: str) -> dict[str, Any]:
        response = self.http.get(
            f"/v2/{repository}/manifests/{digest}",
            headers={
                "Accept": "application/vnd.oci.image.manifest.v1+json, "
                "application/vnd.oci.image.index.v1+json"
            },
        )
        response.raise_for_status()
        return {
            "mediaType": response.headers["content-type"],
            "digest": digest,
            "size": len(response.content),
        }


@dataclass
class OciRegistry(Pusher):
    host: str
    process: subprocess.Popen[bytes]
    workdir: Path
    #: (user, password) when the registry asks for basic authentication (htpasswd).
    credentials: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        Pusher.__init__(self, self.host, self.credentials)

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def push_umoci_image(
        self, repository: str, tag: str, *, label: str, os: str = "linux", arch: str = "amd64"
    ) -> str:
        """A fresh umoci image (made distinct by ``label``), pushed with skopeo; its digest."""
        layout = Path(tempfile.mkdtemp(dir=self.workdir))
        oci = str(layout / "oci")
        subprocess.run(["umoci", "init", "--layout", oci], check=True, capture_output=True)
        subprocess.run(["umoci", "new", "--image", f"{oci}:{tag}"], check=True, capture_output=True)
        subprocess.run(
            [
                "umoci",
                "config",
                "--image",
                f"{oci}:{tag}",
                "--config.label",
                f"test={label}",
                "--os",
                os,
                "--architecture",
                arch,
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                *(["--dest-creds", ":".join(self.credentials)] if self.credentials else []),
                f"oci:{oci}:{tag}",
                f"docker://{self.host}/{repository}:{tag}",
            ],
            check=True,
            capture_output=True,
        )
        return self.head_digest(repository, tag)


def _htpasswd(user: str, password: str) -> str:
    """An htpasswd line with a bcrypt hash (the only kind docker-registry accepts), made by
    the C library's crypt(3) (libxcrypt knows bcrypt)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        # Cost 4, not crypt's 12: the registry checks the hash on every request, and tests
        # make many (a test password, not a stored secret).
        salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)  # noqa: S324 (bcrypt, 2^4)
        return f"{user}:{crypt.crypt(password, salt)}\n"


def start_registry(
    credentials: tuple[str, str] | None = None, port: int | None = None
) -> OciRegistry:
    """A registry; with ``credentials`` it asks for basic authentication (htpasswd); on
    ``port`` when given (benchmarks keep to their own ports), else a free one."""
    workdir = Path(tempfile.mkdtemp(prefix="chainproof-registry-"))
    port = port or _free_port()
    config = workdir / "registry.yml"
    auth = ""
    if credentials is not None:
        (workdir / "htpasswd").write_text(_htpasswd(*credentials))
        auth = f"auth: {{htpasswd: {{realm: chainproof-test, path: {workdir / 'htpasswd'}}}}}\n"
    config.write_text(
        "version: 0.1\n"
        "log: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {workdir / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n" + auth
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"http://{host}/v2/", timeout=1, auth=credentials).status_code == 200:
                return OciRegistry(host, process, workdir, credentials)
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"docker-registry did not start on {host}")
