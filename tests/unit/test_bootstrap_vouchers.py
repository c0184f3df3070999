"""Configured "not-vulnerable" attestors: read once at start-up, refused clearly when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainproof.bootstrap import _voucher
from chainproof.config import VoucherSettings, load_settings
from chainproof.crypto.signing import generate_pkix_key
from chainproof.errors import InvalidArgument


def test_a_configured_voucher_is_read_from_its_files(tmp_path: Path) -> None:
    key = generate_pkix_key("ECDSA_P256_SHA256")
    (tmp_path / "nv.key").write_bytes(key.private_pem)
    (tmp_path / "policy.yaml").write_text("vulnerabilities: {maximumFixableSeverity: LOW}\n")
    settings = load_settings(
        scanning={
            "vouchers": [
                {
                    "attestor_note": "projects/sec/notes/not-vulnerable",
                    "policy_file": str(tmp_path / "policy.yaml"),
                    "key_file": str(tmp_path / "nv.key"),
                    "key_id": "//example/nv",
                }
            ]
        }
    )
    [v] = [_voucher(s) for s in settings.scanning.vouchers]
    assert v.note_name == "projects/sec/notes/not-vulnerable"
    assert v.signer.key_id == "//example/nv"
    assert v.policy.freshness.maximum_scan_age_hours == 24


def test_missing_files_and_bad_notes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read"):
        _voucher(
            VoucherSettings(
                attestor_note="projects/sec/notes/nv",
                policy_file=tmp_path / "missing.yaml",
                key_file=tmp_path / "missing.key",
            )
        )
    (tmp_path / "p.yaml").write_text("vulnerabilities: {}\n")
    (tmp_path / "k.key").write_bytes(generate_pkix_key("ECDSA_P256_SHA256").private_pem)
    with pytest.raises(InvalidArgument):
        _voucher(
            VoucherSettings(
                attestor_note="not-a-note",
                policy_file=tmp_path / "p.yaml",
                key_file=tmp_path / "k.key",
            )
        )
