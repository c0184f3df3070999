"""The server key that seals secrets at rest (crypto/sealing.py), read from its file.

Owns ``notifications.secret_key_file``: read when a secret is first sealed or opened (a
server that never meets a webhook subscription never touches it), and created on that first
use when it does not exist — 32 random bytes, base64, mode 0600, created exclusively so two
processes starting together cannot each write their own. Replicas sharing a database must
share this file (mount one Kubernetes Secret); a replica holding another key refuses to open
what it did not seal, and says which key it holds.

Also owns ``notifications.extra_secret_key_files``: keys that open but never seal (a
rotation's old key, or a new one every replica must hold before any seals with it; ADR 0213).
They are only ever read, never made: a configured one that is missing or damaged is an
error naming it, as nothing sealed under it could open otherwise.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

import structlog

from chainproof.crypto.sealing import (
    KEY_BYTES,
    SealError,
    SecretBox,
    SecretKeyRing,
    format_key,
    parse_key,
)

log = structlog.get_logger("chainproof.secrets")


class SecretKeyFile:
    """A lazily read, cached :class:`SecretKeyRing`: the key file that seals, and the extra
    key files that only open."""

    def __init__(self, path: Path, extra: Sequence[Path] = ()) -> None:
        self.path = path
        self.extra = tuple(extra)
        self._ring: SecretKeyRing | None = None
        self._lock = threading.Lock()

    def ring(self) -> SecretKeyRing:
        """The keys; :class:`SealError` when a file cannot be read (or the sealing one made)."""
        with self._lock:
            if self._ring is None:
                current = self._load(self.path, create=True)
                others = tuple(self._load(p, create=False) for p in self.extra)
                self._ring = SecretKeyRing(current, others)
            return self._ring

    def _load(self, path: Path, *, create: bool) -> SecretBox:
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            if not create:
                raise SealError(
                    f"the extra secret key file {path} does not exist: an extra key is only "
                    "read, never made (remove it from notifications.extra_secret_key_files "
                    "once nothing is sealed under it)"
                ) from None
            text = self._create()
        except (OSError, UnicodeDecodeError) as exc:
            raise SealError(f"cannot read the secret key file {path}: {exc}") from exc
        try:
            box = SecretBox(parse_key(text))
        except SealError as exc:
            raise SealError(f"the secret key file {path}: {exc}") from exc
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "secret key file readable by others",
                path=str(path),
                mode=oct(stat.S_IMODE(mode)),
                hint="chmod 600: whoever reads it can open every sealed webhook secret",
            )
        return box

    def _create(self) -> str:
        path = self.path
        text = create_key_file(path)
        if text is None:  # another process made it first: its key is the key
            try:
                return path.read_text(encoding="ascii")
            except OSError as exc:
                raise SealError(f"cannot read the secret key file {path}: {exc}") from exc
        key_id = SecretBox(parse_key(text)).key_id
        log.info("secret key file created", path=str(path), key_id=key_id)
        return text


def create_key_file(path: Path) -> str | None:
    """Make ``path`` a new key file (32 random bytes, base64, mode 0600) and return its
    text; None, touching nothing, when ``path`` exists already."""
    # Written whole under a temporary name, then linked into place: link refuses an
    # existing name, so of two processes starting together one key wins, and nobody ever
    # reads a half-written file.
    text = format_key(os.urandom(KEY_BYTES))
    temp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        linked = _link(temp, path)
    except OSError as exc:
        raise SealError(f"cannot create the secret key file {path}: {exc}") from exc
    finally:
        temp.unlink(missing_ok=True)
    return text if linked else None


def _link(source: Path, target: Path) -> bool:
    """Link ``source`` at ``target``; False when ``target`` exists already."""
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    return True
