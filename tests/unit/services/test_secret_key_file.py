"""The key file that seals webhook secrets: made once, 0600, shared by whoever starts first."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from chainproof.crypto.sealing import SealError
from chainproof.services.secret_key_file import SecretKeyFile, create_key_file


def test_the_first_use_creates_the_key_owner_only_and_later_ones_read_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "webhook.key"
    first = SecretKeyFile(path).ring()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SecretKeyFile(path).ring().key_id == first.key_id
    assert [p.name for p in path.parent.iterdir()] == ["webhook.key"]  # no temporary left


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "webhook.key"
    ids: list[str] = []
    start = threading.Barrier(8)

    def load() -> None:
        start.wait()
        ids.append(SecretKeyFile(path).ring().key_id)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert SecretKeyFile(path).ring().key_id == ids[0]


def test_a_damaged_key_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "webhook.key"
    path.write_text("c2hvcnQ=\n")  # base64 of 5 bytes
    with pytest.raises(SealError, match=rf"{path}.*holds 5 bytes; expected 32"):
        SecretKeyFile(path).ring()


def test_a_key_that_cannot_be_made_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SealError, match="cannot (read|create) the secret key file"):
        SecretKeyFile(blocker / "webhook.key").ring()


def test_extra_key_files_are_read_and_never_made(tmp_path: Path) -> None:
    current, old = tmp_path / "current.key", tmp_path / "old.key"
    old_id = SecretKeyFile(old).ring().key_id
    ring = SecretKeyFile(current, [old]).ring()
    assert ring.key_ids == (SecretKeyFile(current).ring().key_id, old_id)

    missing = tmp_path / "gone.key"
    with pytest.raises(SealError, match=rf"extra secret key file {missing} does not exist"):
        SecretKeyFile(current, [missing]).ring()
    assert not missing.exists()  # an extra key is never invented


def test_a_damaged_extra_key_file_is_refused_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "old.key"
    bad.write_text("not a key\n")
    with pytest.raises(SealError, match=rf"{bad}.*not base64"):
        SecretKeyFile(tmp_path / "current.key", [bad]).ring()


def test_a_failed_load_is_not_cached(tmp_path: Path) -> None:
    old = tmp_path / "old.key"
    keys = SecretKeyFile(tmp_path / "current.key", [old])
    with pytest.raises(SealError):
        keys.ring()
    SecretKeyFile(old).ring()  # the operator puts the file in place
    assert len(keys.ring().key_ids) == 2


def test_create_key_file_never_replaces_a_key(tmp_path: Path) -> None:
    path = tmp_path / "k" / "new.key"
    text = create_key_file(path)
    assert text is not None and path.read_text() == text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert create_key_file(path) is None
    assert path.read_text() == text
    assert sorted(p.name for p in path.parent.iterdir()) == ["new.key"]
