"""The server key that seals secrets at rest (crypto/sealing.py), read from its file.

Owns ``notifications.secret_key_file``: read when a secret is first sealed or opened (a
server that never meets a webhook subscription never touches it), and created on that first
use when it does not exist — 32 random bytes, base64, mode 0600, created exclusively so two
processes starting together cannot each write their own. Replicas sharing a database must
share this file (mount one Kubernetes Secret); a replica holding another key refuses to open
what it did not seal, and says which key it holds.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import structlog

from chainproof.crypto.sealing import KEY_BYTES, SealError, SecretBox, format_key, parse_key

log = structlog.get_logger("chainproof.secrets")


class SecretKeyFile:
    """A lazily read, cached :class:`SecretBox` for one key file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: SecretBox | None = None
        self._lock = threading.Lock()

    def box(self) -> SecretBox:
        """The key's box; :class:`SealError` when the file cannot be read or made."""
        with self._lock:
            if self._box is None:
                self._box = self._load()
            return self._box

    def _load(self) -> SecretBox:
        path = self.path
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
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
        # Written whole under a temporary name, then linked into place: link refuses an
        # existing name, so of two processes starting together one key wins, and nobody ever
        # reads a half-written file.
        path = self.path
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
        if not linked:  # another process made it first: its key is the key
            try:
                return path.read_text(encoding="ascii")
            except OSError as exc:
                raise SealError(f"cannot read the secret key file {path}: {exc}") from exc
        key_id = SecretBox(parse_key(text)).key_id
        log.info("secret key file created", path=str(path), key_id=key_id)
        return text


def _link(source: Path, target: Path) -> bool:
    """Link ``source`` at ``target``; False when ``target`` exists already."""
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    return True
