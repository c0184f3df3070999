"""One composition root: services are wired in bootstrap only, entrypoints never import it,
and everything wired shares one change feed (so every cache dies with its inputs)."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

from chainproof.bootstrap import build_services
from chainproof.cli.offline import offline_settings
from chainproof.config import Settings
from chainproof.domain.pagination import PageTokenCodec
from chainproof.policy import AdmissionRequest
from chainproof.store.memory import MemoryStore
from unit.services.judge_fixtures import NOW, System

SRC = Path(__file__).resolve().parents[2] / "src" / "chainproof"

#: The use cases the composition root builds; nobody else may construct them in src/.
WIRED = {
    "GrafeasService",
    "JudgeResources",
    "Judge",
    "DecisionLog",
    "AdmissionService",
    "ScanService",
    "Vouching",
    "Dashboard",
    "IngestService",
    "EvidenceGatherer",
    "ChangeFeed",
    "SubscriptionService",
    "KritisJudge",
    "FindingsService",
    "Services",
}


def _modules(under: str) -> list[Path]:
    return sorted((SRC / under).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_entrypoints_and_services_never_import_the_composition_root() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for under in ("api", "services", "store", "sources", "policy", "domain")
        for path in _modules(under)
        if "chainproof.bootstrap" in _imported(path)
    ]
    assert offenders == []


def test_only_bootstrap_constructs_the_services() -> None:
    calls: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "bootstrap.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in WIRED:
                    calls.append(f"{path.relative_to(SRC)}:{node.lineno} {name}")
    # A service may make its own default feed (``changes or ChangeFeed()``) when used alone.
    assert [c for c in calls if not c.endswith("ChangeFeed")] == []


def test_only_the_dependency_module_reads_the_app_state() -> None:
    readers = [
        str(path.relative_to(SRC))
        for path in _modules("api")
        if "app.state.services" in path.read_text(encoding="utf-8")
        or "app.state.container" in path.read_text(encoding="utf-8")
    ]
    assert readers == ["api/rest/deps.py"]


async def test_a_write_through_any_service_reaches_the_judge_cache() -> None:
    # An hour of cache: the attestation can only be seen through the shared change feed.
    system = System(cache_ttl=timedelta(hours=1))
    signer = await system.attestor("sec", "qa")
    await system.policy(
        "app",
        {
            "evaluationMode": "REQUIRE_ATTESTATION",
            "enforcementMode": "ENFORCED_BLOCK_AND_AUDIT_LOG",
            "requireAttestationsBy": [signer.attestor],
        },
    )
    image = "gcr.io/acme/app@sha256:" + "a" * 64
    request = AdmissionRequest(images=(image,))
    assert not (await system.judge.evaluate("app", request, now=NOW)).allowed
    await system.sign(signer, image)
    assert (await system.judge.evaluate("app", request, now=NOW)).allowed


def test_the_offline_path_runs_with_the_servers_caches_and_bounds() -> None:
    server = Settings.model_construct()
    offline = offline_settings()
    assert offline.admission == server.admission
    assert offline.registry == server.registry
    services = build_services(MemoryStore(), settings=offline, tokens=PageTokenCodec(b"o" * 32))
    assert services.judge.gatherer.limits.max_signature_checks == (
        server.admission.max_signature_checks
    )
    # ...but nothing scans behind the files' back.
    assert not offline.scanning.scan_on_sbom
