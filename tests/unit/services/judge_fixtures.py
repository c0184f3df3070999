"""Building blocks for judge tests: a memory-backed system, PKIX attestors, signed evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chainproof.attest.create import PayloadFormat, attestation_occurrence
from chainproof.bootstrap import build_services
from chainproof.cli.offline import offline_settings
from chainproof.crypto.signing import PkixSigner, generate_pkix_key
from chainproof.domain.images import parse_image_reference
from chainproof.domain.messages import note_from_json, occurrence_from_json
from chainproof.domain.pagination import PageTokenCodec
from chainproof.store.memory import MemoryStore

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@dataclass
class Signer:
    attestor: str
    note: str
    signer: PkixSigner
    public_pem: str


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class System:
    store: MemoryStore = field(default_factory=MemoryStore)
    cache_ttl: timedelta = timedelta(0)
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        # Wired by the composition root, as the server is: the offline settings (defaults,
        # no scanning of SBOMs behind the tests' back), with this system's cache TTL.
        settings = offline_settings()
        settings = settings.model_copy(
            update={
                "admission": settings.admission.model_copy(
                    update={"cache_ttl_seconds": self.cache_ttl.total_seconds()}
                )
            }
        )
        self.services = build_services(
            self.store, settings=settings, tokens=PageTokenCodec(b"t" * 32), clock=self.clock
        )
        self.changes = self.services.changes
        self.grafeas = self.services.grafeas
        self.resources = self.services.judge_resources
        self.judge = self.services.judge
        self.gatherer = self.judge.gatherer
        self.decisions = self.services.decisions

    def replica(self) -> System:
        """Another server process on the same database: its writes are not announced here."""
        return System(store=self.store, cache_ttl=self.cache_ttl, clock=self.clock)

    async def attestor(self, project: str, attestor_id: str) -> Signer:
        note_id = f"{attestor_id}-note"
        await self.grafeas.create_note(
            f"projects/{project}", note_id, note_from_json({"attestation": {}})
        )
        key = generate_pkix_key("ECDSA_P256_SHA256")
        key_id = f"//example.com/keys/{attestor_id}"
        await self.resources.create_attestor(
            f"projects/{project}",
            attestor_id,
            {
                "userOwnedGrafeasNote": {
                    "noteReference": f"projects/{project}/notes/{note_id}",
                    "publicKeys": [
                        {
                            "id": key_id,
                            "pkixPublicKey": {
                                "publicKeyPem": key.public_pem.decode(),
                                "signatureAlgorithm": "ECDSA_P256_SHA256",
                            },
                        }
                    ],
                }
            },
        )
        return Signer(
            f"projects/{project}/attestors/{attestor_id}",
            f"projects/{project}/notes/{note_id}",
            PkixSigner.from_pem(key.private_pem, key_id=key_id),
            key.public_pem.decode(),
        )

    async def sign(self, signer: Signer, image: str, *, filed_under: str | None = None) -> Any:
        """A simple-signing attestation of ``image``, filed under ``filed_under`` (default:
        the same image) in project ``app``."""
        signed = attestation_occurrence(
            parse_image_reference(image),
            PayloadFormat.SIMPLE_SIGNING,
            signer.signer,
            note_name=signer.note,
            resource_uri=filed_under or image,
        )
        return await self.grafeas.create_occurrence("projects/app", occurrence_from_json(signed))

    async def attest(self, signer: Signer, image: str, predicate_type: str, predicate: dict) -> Any:
        signed = attestation_occurrence(
            parse_image_reference(image),
            PayloadFormat.IN_TOTO,
            signer.signer,
            predicate_type=predicate_type,
            predicate=predicate,
            note_name=signer.note,
            resource_uri=image,
        )
        return await self.grafeas.create_occurrence("projects/app", occurrence_from_json(signed))

    async def policy(self, project: str, rule: dict[str, Any], **extra: Any) -> None:
        await self.resources.put_policy(
            f"projects/{project}", {"defaultAdmissionRule": rule, **extra}
        )
