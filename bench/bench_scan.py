"""Benchmark: chainproof's scanner — 1,000 SBOMs of 300 packages against 50,000 OSV advisories,
then a re-match after 100 new advisories.

    .venv/bin/python bench/bench_scan.py [--sboms 1000] [--packages 300] [--advisories 50000]

The data is generated (seeded): Debian, PyPI, npm, Go and Maven advisories whose ranges use
each ecosystem's real version syntax, and SBOMs built as images are — one of 20 base images
(120 Debian packages) plus 180 application packages drawn from a shared pool, so images
share most packages, as a fleet's do. Everything runs through the real code path: purls are
parsed into packages, advisories are parsed from OSV JSON and indexed, every package is
matched with its ecosystem's order.

Re-match: 100 new advisories are imported; the packages they touch are found through an index
(ecosystem, name) → images, and only those images are matched again. The figure is reported
per 1,000 affected images.

Floor, measured in the same run: one dict lookup per SBOM package against the (ecosystem,
name) index — what any matcher must at least do. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import defaultdict

from chainproof.vuln.match import AdvisoryIndex, keys_of
from chainproof.vuln.osv import parse_record
from chainproof.vuln.packages import Package, package_from_fields

ECOSYSTEMS = ("Debian", "PyPI", "npm", "Go", "Maven")


def _version(rng: random.Random, ecosystem: str) -> str:
    a, b, c = rng.randint(0, 9), rng.randint(0, 30), rng.randint(0, 20)
    if ecosystem == "Debian":
        return f"{a}.{b}.{c}-{rng.randint(1, 9)}" + (
            f"+deb12u{rng.randint(1, 9)}" if rng.random() < 0.3 else ""
        )
    if ecosystem == "Go":
        return f"v{a}.{b}.{c}"
    return f"{a}.{b}.{c}"


def _name(ecosystem: str, i: int) -> str:
    if ecosystem == "Maven":
        return f"org.example{i % 97}:lib{i}"
    if ecosystem == "Go":
        return f"github.com/org{i % 89}/mod{i}"
    return f"{ecosystem.lower()}-pkg{i}"


def _purl(ecosystem: str, name: str, version: str) -> str:
    if ecosystem == "Debian":
        return f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12"
    if ecosystem == "Maven":
        group, artifact = name.split(":")
        return f"pkg:maven/{group}/{artifact}@{version}"
    if ecosystem == "Go":
        return f"pkg:golang/{name}@{version}"
    return f"pkg:{ecosystem.lower()}/{name}@{version}"


def _record(rng: random.Random, n: int, ecosystem: str, name: str) -> dict[str, object]:
    events: list[dict[str, str]] = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        lo = _version(rng, ecosystem).lstrip("v")
        hi = _version(rng, ecosystem).lstrip("v")
        events += [{"introduced": rng.choice(("0", lo))}, {"fixed": hi}]
    return {
        "id": f"BENCH-{n}",
        "modified": "2026-01-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
        "affected": [
            {
                "package": {
                    "ecosystem": "Debian:12" if ecosystem == "Debian" else ecosystem,
                    "name": name,
                },
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sboms", type=int, default=1_000)
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--advisories", type=int, default=50_000)
    args = parser.parse_args()
    rng = random.Random(20261201)

    # Package pools: 2,000 Debian packages (bases draw from them), 12,000 application ones.
    debian = [("Debian", _name("Debian", i)) for i in range(2_000)]
    apps = [(e, _name(e, i)) for i in range(12_000) for e in (ECOSYSTEMS[1 + i % 4],)]
    versioned = {key: [_version(rng, key[0]) for _ in range(3)] for key in debian + apps}
    bases = [
        [(e, n, rng.choice(versioned[(e, n)])) for e, n in rng.sample(debian, 120)]
        for _ in range(20)
    ]
    app_count = args.packages - 120
    sboms: list[list[str]] = []
    for _ in range(args.sboms):
        chosen = rng.choice(bases) + [
            (e, n, rng.choice(versioned[(e, n)])) for e, n in rng.sample(apps, app_count)
        ]
        sboms.append([_purl(e, n, v) for e, n, v in chosen])
    # Advisories: a third about Debian packages, the rest spread over the others.
    names = debian + apps
    records = [_record(rng, i, *rng.choice(names)) for i in range(args.advisories)]
    documents = [json.dumps(r) for r in records]
    total_packages = sum(len(s) for s in sboms)

    t0 = time.perf_counter()
    index = AdvisoryIndex()
    for doc in documents:
        index.put(parse_record(json.loads(doc)))
    t_index = time.perf_counter() - t0

    t0 = time.perf_counter()
    parsed: dict[str, Package] = {}
    images: list[list[Package]] = []
    for purls in sboms:
        row = []
        for purl in purls:
            pkg = parsed.get(purl)
            if pkg is None:
                pkg = parsed[purl] = package_from_fields(name="", version="", purl=purl)
            row.append(pkg)
        images.append(row)
    t_packages = time.perf_counter() - t0

    t0 = time.perf_counter()
    findings = 0
    unknown = 0
    # The re-match index: (ecosystem, name) → the images holding it and their package.
    by_key: dict[tuple[str, str], list[tuple[int, Package]]] = defaultdict(list)
    for i, row in enumerate(images):
        report = index.match(row)
        findings += len(report.findings)
        unknown += len(report.unknown)
        for pkg in row:
            for eco, name, _ in pkg.lookups():
                by_key[(eco, name)].append((i, pkg))
    t_match = time.perf_counter() - t0

    # Floor: the least any matcher does — one lookup per package in the (ecosystem, name) index.
    keys = [pkg.lookups()[0][:2] for row in images for pkg in row]
    entries = {k: True for k in by_key}
    t0 = time.perf_counter()
    hits = 0
    for k in keys:
        if k in entries:
            hits += 1
    t_floor = time.perf_counter() - t0

    # Re-match after 100 new advisories, about packages that images hold.
    held = list(by_key)
    new = [_record(rng, args.advisories + i, *rng.choice(held)) for i in range(100)]
    t0 = time.perf_counter()
    touched: set[tuple[str, str]] = set()
    for record in new:
        advisory = parse_record(record)
        touched |= index.put(advisory)
    # Only the touched packages of the images that hold them are matched again.
    rematch_findings = 0
    affected: set[int] = set()
    for key in touched:
        for i, pkg in by_key.get(key, ()):
            affected.add(i)
            rematch_findings += len(index.match([pkg]).findings)
    affected_images = sorted(affected)
    t_rematch = time.perf_counter() - t0
    assert all(keys_of(parse_record(r)) for r in new)

    scan = t_index + t_packages + t_match
    per_1000 = t_rematch / max(len(affected_images), 1) * 1000
    print(
        f"scan: {args.sboms} SBOMs x {args.packages} packages ({total_packages:,} packages, "
        f"{len(parsed):,} distinct) against {args.advisories:,} advisories"
    )
    print(f"  index advisories      {t_index:7.2f} s")
    print(f"  packages from purls   {t_packages:7.2f} s")
    print(f"  match                 {t_match:7.2f} s   ({findings:,} findings, {unknown} unknown)")
    print(f"  total                 {scan:7.2f} s   (target <= 30 s)")
    print(
        f"  floor (1 lookup/pkg)  {t_floor * 1000:7.1f} ms  -> "
        f"match/floor = {t_match / t_floor:,.0f}x"
    )
    print(
        f"re-match after 100 new advisories: {len(touched)} package keys, "
        f"{len(affected_images)} images, {rematch_findings:,} findings on them, {t_rematch:.3f} s "
        f"= {per_1000:.3f} s per 1,000 affected images (target <= 1 s)"
    )
    print("(shared 2-core machine: figures are noisy)")


if __name__ == "__main__":
    main()
