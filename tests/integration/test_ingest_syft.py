"""Ingest on SBOMs syft makes of real things: a Debian root file system and our own venv.

Every package dpkg says is installed in the root must come out as a PACKAGE occurrence with
its exact version and a canonical ``pkg:deb/debian/…`` purl, from each of syft's four
outputs (CycloneDX JSON and XML, SPDX JSON and tag-value); every distribution installed in
the venv must come out as a ``pkg:pypi/…`` package.
"""

from __future__ import annotations

import hashlib
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packageurl import PackageURL

from chainproof.domain.images import parse_image_reference
from chainproof.ingest import Format, IngestContext, convert
from chainproof.ingest.facts import purl_of_package
from chainproof.ingest.purls import canonical_purl
from realsyft import CACHE, debian_rootfs, dpkg_packages, syft_documents

IMAGE = parse_image_reference("registry.example/debian@sha256:" + "cd" * 32)


def _ctx(raw: bytes) -> IngestContext:
    return IngestContext("p", IMAGE, "sha256:" + hashlib.sha256(raw).hexdigest())


def _packages(raw: bytes, fmt: Format) -> dict[tuple[str, str], str]:
    conv = convert(raw, _ctx(raw), fmt)
    out = {}
    for occ in conv.occurrences:
        if occ["kind"] == "PACKAGE":
            pkg = occ["package"]
            out[(pkg["name"], pkg.get("version", {}).get("fullName", ""))] = purl_of_package(pkg)
    return out


@pytest.fixture(scope="module")
def debian_sboms() -> dict[str, bytes]:
    rootfs = debian_rootfs()
    return syft_documents(rootfs, CACHE, f"{rootfs.name}.ingest-syft")


@pytest.mark.parametrize("fmt", list(Format)[:4])
def test_debian_root_every_dpkg_package_is_ingested(debian_sboms, fmt):
    expected = dpkg_packages(debian_rootfs())
    assert len(expected) > 50
    got = _packages(debian_sboms[fmt.value], fmt)
    debs = {key: purl for key, purl in got.items() if purl.startswith("pkg:deb/debian/")}
    assert set(debs) == expected
    for (name, version), purl in debs.items():
        assert purl == canonical_purl(purl)
        parsed = PackageURL.from_string(purl)
        assert (parsed.name, parsed.version) == (name, version)
    assert (
        detect := convert(debian_sboms[fmt.value], _ctx(debian_sboms[fmt.value]))
    ).format is fmt, detect.format


def test_own_venv_every_distribution_is_ingested(tmp_path: Path):
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    docs = syft_documents(site, tmp_path, "venv")
    raw = docs["cyclonedx-json"]
    got = _packages(raw, Format.CYCLONEDX_JSON)
    pypi = {purl.split("@")[0] for purl in got.values() if purl.startswith("pkg:pypi/")}
    installed = {
        canonical_purl(f"pkg:pypi/{d.metadata['Name']}").split("@")[0].replace("_", "-")
        for d in metadata.distributions()
        if d.metadata["Name"] and not d.metadata["Name"].startswith("__editable__")
    }
    # syft names each distribution it finds a RECORD/METADATA for; our venv has both
    assert {
        "pkg:pypi/cyclonedx-python-lib",
        "pkg:pypi/packageurl-python",
        "pkg:pypi/fastapi",
    } <= pypi
    missing = {
        p for p in installed if p.replace("_", "-") not in {x.replace("_", "-") for x in pypi}
    }
    assert len(missing) <= len(installed) // 10, sorted(missing)[:20]
