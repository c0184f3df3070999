"""The scanner reads SBOM packages from their stored JSON, not from parsed messages: each must
give the package the message would (syft's SBOM of a real Debian root file system, and the
shapes the PackageOccurrence contract allows), in either JSON spelling."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

import realdebian
from chainproof.domain.messages import occurrence_from_json, to_json
from chainproof.services.scribe.scanning import _cpe_of, _package_of
from chainproof.store.port import StoredOccurrence
from chainproof.vuln.packages import Package, package_from_fields


def from_message(occ: Any) -> Package:
    """The reference: the matching view read from the message's fields."""
    p = occ.package
    v = p.version
    text = v.full_name or (
        (f"{v.epoch}:" if v.epoch else "") + v.name + (f"-{v.revision}" if v.revision else "")
    )
    purl = next((str(loc.cpe_uri) for loc in p.location if str(loc.cpe_uri).startswith("pkg:")), "")
    if not purl and str(p.cpe_uri).startswith("pkg:"):
        purl = str(p.cpe_uri)
    return package_from_fields(
        name=str(p.name),
        version=text,
        purl=purl or None,
        architecture=None,
        package_type=str(p.package_type) or None,
    )


def stored(document: dict[str, Any]) -> StoredOccurrence:
    return StoredOccurrence("prod", "o", "PACKAGE", "prod", "n", "r", document)


def test_packages_from_stored_json_equal_packages_from_messages() -> None:
    packages = realdebian.sbom_packages(realdebian.syft_sbom(realdebian.debian_rootfs()))
    assert len(packages) > 50
    bodies: list[dict[str, Any]] = [
        {
            "package": {
                "name": p["name"],
                "version": {"name": p["version"], "kind": "NORMAL", "fullName": p["version"]},
                "location": [{"cpeUri": p["purl"]}],
            }
        }
        for p in packages
    ]
    bodies += [
        {
            "package": {
                "name": "zlib1g",
                "version": {"epoch": 1, "name": "1.2.13", "revision": "dfsg-1", "kind": "NORMAL"},
                "location": [
                    {"cpeUri": "cpe:/a:x"},
                    {"cpeUri": "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?distro=debian-12"},
                ],
            }
        },
        {
            "package": {
                "name": "left-pad",
                "version": {"name": "1.3.0", "kind": "NORMAL"},
                "cpeUri": "pkg:npm/left-pad@1.3.0",
            }
        },
        {
            "package": {
                "name": "requests",
                "version": {"name": "2.0", "kind": "NORMAL"},
                "packageType": "pypi",
                "cpeUri": "cpe:2.3:a:python:requests:2.0",
            }
        },
        {"package": {"name": "bare", "version": {"kind": "NORMAL"}}},
        {"package": {"name": "no-version"}},
    ]
    for body in bodies:
        occ = occurrence_from_json(
            {
                "resourceUri": "reg.example/a@sha256:" + "a" * 64,
                "noteName": "projects/p/notes/n",
                **body,
            }
        )
        expected = from_message(occ)
        camel = to_json(occ)
        snake = json_format.MessageToDict(occ, preserving_proto_field_name=True)
        for document in (camel, snake):
            assert _package_of(stored(document)) == expected
            assert _cpe_of(stored(document)) == (occ.package.cpe_uri or None)


def test_finding_templates_equal_findings_parsed_whole() -> None:
    """A finding's occurrence is built from its advisory's part (parsed once) and its own
    part: the same message as parsing the whole body, on real Go vulndb findings."""
    from chainproof.services.scribe.scanning import _finding_message, _template
    from chainproof.vuln import grafeas as vg
    from chainproof.vuln.match import AdvisoryIndex
    from chainproof.vuln.osv import parse_document

    index = AdvisoryIndex()
    packages = []
    for path in realdebian.go_vulndb_files():
        for a in parse_document(path.read_bytes(), source=path.name):
            index.put(a)
            for entry in a.affected:
                for r in entry.ranges if entry.package else ():
                    for e in r.events:
                        if e.version != "0":
                            purl = f"pkg:golang/{entry.package.name}@v{e.version.lstrip('v')}"
                            packages.append(package_from_fields(name="", version="", purl=purl))
                            # and one below the event, inside the range when it is a fix
                            below = f"pkg:golang/{entry.package.name}@v0.0.0-1"
                            packages.append(package_from_fields(name="", version="", purl=below))
    findings = index.match(packages).findings
    assert len(findings) > 10
    bases: dict[str, Any] = {}
    for i, f in enumerate(findings):
        advisory = index.get(f.advisory_id)
        assert advisory is not None
        cpe = None if i % 2 else "cpe:2.3:a:x:y:1"
        body = vg.finding_occurrence(
            f"reg.example/app{i}@sha256:{'c' * 64}", f, advisory, "osv", cpe
        )
        template = _template(body, f.advisory_id, bases)
        assert template is not None
        assert template == _finding_message(body, f.advisory_id)
