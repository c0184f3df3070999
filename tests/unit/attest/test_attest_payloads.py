"""Payload formats: simple signing, the seed 000 image URL and in-toto statements."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement as ItStatement

from chainproof.attest import (
    ATOMIC_SIGNATURE_TYPE,
    BINAUTHZ_SIGNATURE_TYPE,
    COSIGN_SIGNATURE_TYPE,
    CYCLONEDX_BOM,
    OPENVEX,
    SLSA_PROVENANCE_V02,
    SLSA_PROVENANCE_V1,
    SPDX_DOCUMENT,
    STATEMENT_V01,
    VULN_SCAN_COSIGN,
    build_image_url_payload,
    build_simple_signing,
    build_statement,
    parse_image_url_payload,
    parse_simple_signing,
    parse_statement,
    predicate_kind,
)
from chainproof.domain.images import parse_image_reference
from chainproof.errors import InvalidArgument

from .conftest import HEX_A, HEX_B, IMAGE_A, IMAGE_B, OTHER_REPO, REPO


class TestSimpleSigning:
    @pytest.mark.parametrize(
        "kind", [ATOMIC_SIGNATURE_TYPE, BINAUTHZ_SIGNATURE_TYPE, COSIGN_SIGNATURE_TYPE]
    )
    def test_round_trip_names_the_image(self, kind: str) -> None:
        data = build_simple_signing(IMAGE_A, signature_type=kind, optional={"by": "ci"})

        payload = parse_simple_signing(data)

        assert payload.docker_reference == REPO
        assert payload.manifest_digest == f"sha256:{HEX_A}"
        assert payload.signature_type == kind
        assert payload.optional == {"by": "ci"}
        assert payload.mismatches(IMAGE_A) == ()

    def test_binauthz_document_as_written_by_gcloud(self) -> None:
        doc = {
            "critical": {
                "identity": {"docker-reference": f"https://{REPO}:1.0"},
                "image": {"docker-manifest-digest": f"sha256:{HEX_A}"},
                "type": "Google cloud binauthz container signature",
            }
        }
        payload = parse_simple_signing(json.dumps(doc, indent=2).encode())

        assert payload.optional is None
        assert payload.mismatches(IMAGE_A) == ()

    def test_mismatches_name_digest_and_repository(self) -> None:
        payload = parse_simple_signing(build_simple_signing(IMAGE_A))
        evil = parse_simple_signing(
            build_simple_signing(parse_image_reference(f"{OTHER_REPO}@sha256:{HEX_B}"))
        )

        assert payload.mismatches(IMAGE_B) == (
            f"payload names sha256:{HEX_A} but the image is sha256:{HEX_B}",
        )
        assert evil.mismatches(IMAGE_B) == (
            f"payload names repository {OTHER_REPO} but the image is in {REPO}",
        )

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            (lambda d: d["critical"].pop("identity"), "lacks critical.identity"),
            (
                lambda d: d["critical"]["image"].update({"docker-manifest-digest": "sha256:xyz"}),
                "not sha256",
            ),
            (lambda d: d["critical"].update({"type": "my own signature"}), "is not one of"),
            (lambda d: d.update({"optional": []}), "optional must be a JSON object"),
            (lambda d: d.pop("critical"), "lacks critical"),
        ],
    )
    def test_malformed_payloads_are_refused(self, mutate: object, message: str) -> None:
        doc = json.loads(build_simple_signing(IMAGE_A))
        mutate(doc)  # type: ignore[operator]
        with pytest.raises(InvalidArgument, match=message):
            parse_simple_signing(json.dumps(doc).encode())

    def test_build_refuses_tags_and_unknown_types(self) -> None:
        with pytest.raises(InvalidArgument, match="no digest"):
            build_simple_signing(parse_image_reference(f"{REPO}:latest"))
        with pytest.raises(InvalidArgument, match="unknown simple signing type"):
            build_simple_signing(IMAGE_A, signature_type="custom")


class TestImageUrl:
    @pytest.mark.parametrize(
        "text",
        [
            f"{REPO}@sha256:{HEX_A}",
            f"{REPO}@sha256:{HEX_A}\n",
            f"https://{REPO}@sha256:{HEX_A}\r\n",
            f"  {REPO}:v1@sha256:{HEX_A}  ",
        ],
    )
    def test_seed_forms_parse(self, text: str) -> None:
        payload = parse_image_url_payload(text.encode())

        assert payload.reference.canonical == IMAGE_A.canonical
        assert payload.mismatches(IMAGE_A) == ()
        assert payload.mismatches(IMAGE_B) == (
            f"payload names sha256:{HEX_A} but the image is sha256:{HEX_B}",
        )

    def test_tag_only_or_several_lines_are_refused(self) -> None:
        with pytest.raises(InvalidArgument, match="no digest"):
            parse_image_url_payload(f"{REPO}:latest".encode())
        with pytest.raises(InvalidArgument, match="exactly one image reference"):
            parse_image_url_payload(f"{REPO}@sha256:{HEX_A}\n{REPO}@sha256:{HEX_B}".encode())

    def test_build_is_canonical(self) -> None:
        assert build_image_url_payload(IMAGE_A) == f"{REPO}@sha256:{HEX_A}\n".encode()


class TestStatement:
    def test_statement_made_by_in_toto_attestation_library(self) -> None:
        subject = ResourceDescriptor(name=REPO, digest={"sha256": HEX_A}).pb
        made = ItStatement([subject], SLSA_PROVENANCE_V1, {"buildDefinition": {"buildType": "x"}})
        data = json_format.MessageToJson(made.pb).encode()

        statement = parse_statement(data)

        assert statement.predicate_type == SLSA_PROVENANCE_V1
        assert statement.predicate_kind == "slsa-provenance"
        assert statement.predicate == {"buildDefinition": {"buildType": "x"}}
        assert statement.mismatches(IMAGE_A) == ()

    def test_v01_statement_parses(self) -> None:
        data = build_statement(
            IMAGE_A, SLSA_PROVENANCE_V02, {"builder": {"id": "b"}}, statement_type=STATEMENT_V01
        )

        statement = parse_statement(data)

        assert statement.statement_type == STATEMENT_V01
        assert statement.mismatches(IMAGE_A) == ()

    def test_right_digest_under_another_name_does_not_count(self) -> None:
        doc = json.loads(build_statement(IMAGE_A, CYCLONEDX_BOM, {}))
        doc["subject"] = [
            {"name": OTHER_REPO, "digest": {"sha256": HEX_A}},
            {"name": REPO, "digest": {"sha256": HEX_B}},
        ]

        statement = parse_statement(json.dumps(doc).encode())

        assert statement.mismatches(IMAGE_A) == (
            f"statement names sha256:{HEX_A} only under '{OTHER_REPO}', not under the "
            f"image's repository {REPO}",
        )

    def test_subjects_without_the_digest(self) -> None:
        statement = parse_statement(build_statement(IMAGE_A, SPDX_DOCUMENT, {}))

        (reason,) = statement.mismatches(IMAGE_B)

        assert f"do not include sha256:{HEX_B}" in reason
        assert f"{REPO}@sha256:{HEX_A}" in reason

    def test_subject_names_in_docker_hub_short_form_match(self) -> None:
        hub = parse_image_reference(f"nginx@sha256:{HEX_A}")
        doc = json.loads(build_statement(hub, OPENVEX, {}))
        doc["subject"][0]["name"] = "index.docker.io/library/nginx"

        assert parse_statement(json.dumps(doc).encode()).mismatches(hub) == ()

    @pytest.mark.parametrize(
        ("uri", "kind"),
        [
            (SLSA_PROVENANCE_V1, "slsa-provenance"),
            (SLSA_PROVENANCE_V02, "slsa-provenance"),
            (CYCLONEDX_BOM, "cyclonedx"),
            ("https://cyclonedx.org/bom/v1.5", "cyclonedx"),
            (SPDX_DOCUMENT, "spdx"),
            ("https://spdx.dev/Document/v2.3", "spdx"),
            (VULN_SCAN_COSIGN, "vulnerability-scan"),
            (OPENVEX, "openvex"),
            ("https://openvex.dev/ns/v0.2.0", "openvex"),
            ("https://example.com/custom", None),
            ("https://slsa.dev/provenanceX", None),
        ],
    )
    def test_predicate_kinds(self, uri: str, kind: str | None) -> None:
        assert predicate_kind(uri) == kind

    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            ({"_type": "https://in-toto.io/Statement/v2"}, "_type"),
            ({"_type": STATEMENT_V01, "subject": []}, "non-empty subject"),
            (
                {"_type": STATEMENT_V01, "subject": [{"name": "x", "digest": {"sha256": "zz"}}]},
                "64 hex",
            ),
            (
                {"_type": STATEMENT_V01, "subject": [{"name": "x", "digest": {}}]},
                "non-empty digest",
            ),
            (
                {"_type": STATEMENT_V01, "subject": [{"name": "x", "digest": {"sha256": HEX_A}}]},
                "predicateType",
            ),
        ],
    )
    def test_malformed_statements_are_refused(self, doc: dict[str, object], message: str) -> None:
        with pytest.raises(InvalidArgument, match=message):
            parse_statement(json.dumps(doc).encode())
