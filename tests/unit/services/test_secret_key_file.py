"""The key file that seals webhook secrets: made once, 0600, shared by whoever starts first."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from chainproof.crypto.sealing import SealError
from chainproof.services.secret_key_file import SecretKeyFile


def test_the_first_use_creates_the_key_owner_only_and_later_ones_read_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "webhook.key"
    first = SecretKeyFile(path).box()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SecretKeyFile(path).box().key_id == first.key_id
    assert [p.name for p in path.parent.iterdir()] == ["webhook.key"]  # no temporary left


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "webhook.key"
    ids: list[str] = []
    start = threading.Barrier(8)

    def load() -> None:
        start.wait()
        ids.append(SecretKeyFile(path).box().key_id)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert SecretKeyFile(path).box().key_id == ids[0]


def test_a_damaged_key_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "webhook.key"
    path.write_text("c2hvcnQ=\n")  # base64 of 5 bytes
    with pytest.raises(SealError, match=rf"{path}.*holds 5 bytes; expected 32"):
        SecretKeyFile(path).box()


def test_a_key_that_cannot_be_made_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SealError, match="cannot (read|create) the secret key file"):
        SecretKeyFile(blocker / "webhook.key").box()
