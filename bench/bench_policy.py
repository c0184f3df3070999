"""Decisions per second of ``evaluate()``: 3 images, 2 required attestors, a vulnerability check.

Run: ``.venv/bin/python bench/bench_policy.py [--seconds 2]``. Prints figures; asserts nothing
about speed. The evidence is already verified (that is the contract of ``evaluate``), so this
measures the judge alone; figures with and without a warm verification cache belong to the
service layer and are added there.

The floor: chainproof's CEL check alone (building the variables the expression uses, then
evaluating it, for the 3 images) against a bare ``cel-expr-python`` evaluation of the same
expression over the same data, already built as plain dicts, in the same run.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cel_expr_python import cel

from chainproof.domain.images import parse_image_reference
from chainproof.policy import (
    AdmissionRequest,
    AttestationKind,
    Evidence,
    ImageEvidence,
    Severity,
    VerifiedAttestation,
    VexStatement,
    VexStatus,
    VulnerabilityFinding,
    VulnerabilityScan,
    evaluate,
    parse_attestor,
    parse_policy,
)
from chainproof.policy.checks.base import CheckContext
from chainproof.policy.checks.cel import CelCheck, cel_activation

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
QA, BUILD = "projects/p/attestors/qa", "projects/p/attestors/build"


CEL = f'attestations.exists(a, a.attestor == "{QA}")'


def build_inputs(with_cel: bool) -> tuple[object, AdmissionRequest, Evidence]:
    checks: dict[str, object] = {
        "vulnerabilities": {"maximumFixableSeverity": "MEDIUM", "maximumUnfixableSeverity": "HIGH"},
    }
    if with_cel:
        checks["cel"] = CEL
    policy = parse_policy(
        {
            "name": "projects/p/policy",
            "defaultAdmissionRule": {
                "evaluationMode": "REQUIRE_ATTESTATION",
                "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
                "requireAttestationsBy": [QA, BUILD],
                "chainproofChecks": checks,
            },
        }
    )
    attestors = {
        name: parse_attestor(
            {
                "name": name,
                "userOwnedGrafeasNote": {
                    "noteReference": name.replace("attestors", "notes"),
                    "publicKeys": [{"id": f"{name}-k1", "asciiArmoredPgpPublicKey": "x"}],
                },
            }
        )
        for name in (QA, BUILD)
    }
    images: dict[str, ImageEvidence] = {}
    refs = []
    for i in range(3):
        ref = f"gcr.io/p/app{i}@sha256:{str(i) * 64}"
        refs.append(ref)
        images[ref] = ImageEvidence(
            attestations=tuple(
                VerifiedAttestation(
                    a, f"{a}-k1", f"projects/p/occurrences/{i}-{j}", AttestationKind.SIMPLE_SIGNING
                )
                for j, a in enumerate((QA, BUILD))
            ),
            vulnerabilities=tuple(
                VulnerabilityFinding(f"CVE-2024-{k}", Severity(1 + k % 4), k % 2 == 0, "pkg")
                for k in range(20)
            ),
            vex=(
                VexStatement("CVE-2024-3", VexStatus.NOT_AFFECTED, "vex"),
                VexStatement("CVE-2024-7", VexStatus.NOT_AFFECTED, "vex"),
                VexStatement("CVE-2024-11", VexStatus.NOT_AFFECTED, "vex"),
                VexStatement("CVE-2024-15", VexStatus.NOT_AFFECTED, "vex"),
                VexStatement("CVE-2024-19", VexStatus.NOT_AFFECTED, "vex"),
                VexStatement("CVE-2024-2", VexStatus.NOT_AFFECTED, "vex"),
                VexStatement("CVE-2024-6", VexStatus.NOT_AFFECTED, "vex"),
                VexStatement("CVE-2024-10", VexStatus.NOT_AFFECTED, "vex"),
                VexStatement("CVE-2024-14", VexStatus.NOT_AFFECTED, "vex"),
                VexStatement("CVE-2024-18", VexStatus.NOT_AFFECTED, "vex"),
            ),
            scans=(VulnerabilityScan(NOW - timedelta(hours=2), "trivy"),),
        )
    return policy, AdmissionRequest(tuple(refs), namespace="prod"), Evidence(images, attestors)


def measure(label: str, with_cel: bool, seconds: float) -> None:
    policy, request, evidence = build_inputs(with_cel)
    from chainproof.policy import Policy

    assert isinstance(policy, Policy)
    first = evaluate(policy, request, evidence, NOW)
    print(f"{label}: outcome of the benchmark request = {first.outcome.value}")
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            evaluate(policy, request, evidence, NOW)
        count += 50
    elapsed = time.perf_counter() - start
    print(
        f"{label}: {count / elapsed:,.0f} decisions/s "
        f"({elapsed / count * 1e6:,.0f} µs per 3-image decision, {count} runs)"
    )


def per_second(fn: Any, seconds: float) -> float:
    """Calls of ``fn`` per second over about ``seconds``."""
    fn()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            fn()
        count += 50
    return count / (time.perf_counter() - start)


def cel_floor(seconds: float) -> None:
    """chainproof's CEL check for the 3 images against bare cel-expr-python on the same data."""
    _, request, evidence = build_inputs(with_cel=True)
    check = CelCheck.compile(CEL)
    contexts = [
        CheckContext(
            image=parse_image_reference(ref),
            evidence=evidence.for_image(parse_image_reference(ref)).scoped_to(
                frozenset((QA, BUILD))
            ),
            attestors=evidence.attestors,
            now=NOW,
            request=request.as_cel(),
        )
        for ref in request.images
    ]
    # The floor gets the very activations chainproof builds, prepared in advance.
    activations = [cel_activation(ctx, check.variables) for ctx in contexts]
    bare = cel.NewEnv(variables={"attestations": cel.Type.DYN}).compile(CEL)

    def ours() -> None:
        for ctx in contexts:
            if not check.judge(ctx)[0].passed:
                raise SystemExit("CEL check denied the benchmark image")

    def floor() -> None:
        for data in activations:
            if bare.eval(data=data).value() is not True:
                raise SystemExit("bare CEL evaluation did not return true")

    ours_rate, floor_rate = per_second(ours, seconds), per_second(floor, seconds)
    print(
        f"CEL check alone (3 images): {1e6 / ours_rate:,.1f} µs; bare cel-expr-python eval of "
        f"the same expression and data: {1e6 / floor_rate:,.1f} µs; "
        f"ratio {floor_rate / ours_rate:.2f}× the floor"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    measure("2 attestors + vulnerability check", with_cel=False, seconds=args.seconds)
    measure("2 attestors + vulnerability check + CEL", with_cel=True, seconds=args.seconds)
    cel_floor(args.seconds)


if __name__ == "__main__":
    main()
