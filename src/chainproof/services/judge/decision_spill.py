"""The decision log's spill files: where records wait on local disk while the database cannot
take them and the in-memory queue is full.

Owns the files in one directory (``decision_log.spill_dir``), JSON lines, one record a line:

* a process appends to a file of its own, which it holds an exclusive ``flock`` on; a file is
  created under a temporary name, locked, then renamed, so nobody can claim it half-made;
* to replay, a process claims a finished file by taking its lock without waiting (a live
  writer's file stays locked, so it is skipped; a dead process's file is free and is taken),
  reads it, and deletes it once every record in it is stored;
* a line cut short by a crash is skipped and counted, never guessed at.

Records keep their decision IDs, so a replay that repeats a write the database had already
committed is recognised by the writer (see :mod:`chainproof.services.judge.decision_log`).
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import structlog

from chainproof.store.port import DecisionRecord

log = structlog.get_logger("chainproof.decisions")

_SUFFIX = ".jsonl"
#: A file is closed and a new one begun past this size, so a replay reads a bounded file.
_ROTATE_BYTES = 16 * 1024 * 1024


def encode_record(record: DecisionRecord) -> bytes:
    """One line of a spill file (raises orjson.JSONEncodeError on data JSON cannot hold)."""
    line = orjson.dumps(
        {
            "id": record.decision_id,
            "project": record.project,
            "time": record.time.isoformat(),
            "outcome": record.outcome,
            "namespace": record.namespace,
            "images": list(record.images),
            "data": record.data,
        }
    )
    return line + b"\n"


def decode_record(line: bytes) -> DecisionRecord:
    """The record of one line; ValueError (or KeyError/TypeError) for a damaged line."""
    raw: Any = orjson.loads(line)
    time = datetime.fromisoformat(raw["time"])
    if time.tzinfo is None:
        raise ValueError("spilled time has no offset")
    return DecisionRecord(
        decision_id=str(raw["id"]),
        project=str(raw["project"]),
        time=time,
        outcome=str(raw["outcome"]),
        namespace=str(raw["namespace"]),
        images=tuple(str(i) for i in raw["images"]),
        data=dict(raw["data"]),
    )


@dataclass
class ClaimedFile:
    """A spill file this process holds the lock of, being replayed."""

    path: Path
    handle: BinaryIO
    #: Lines that could not be read back (cut short by a crash).
    damaged: int = 0

    def batches(self, size: int) -> Iterator[list[DecisionRecord]]:
        batch: list[DecisionRecord] = []
        self.handle.seek(0)
        for line in self.handle:
            if not line.strip():
                continue
            try:
                batch.append(decode_record(line))
            except (ValueError, KeyError, TypeError):
                self.damaged += 1
                continue
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch


@dataclass
class DecisionSpill:
    """Spill files in ``directory``, at most ``max_bytes`` in all (past it, appends fail)."""

    directory: Path
    max_bytes: int = 1024 * 1024 * 1024
    #: Records this process has spilled (or claimed from others) and not yet replayed.
    pending: int = 0
    _current: BinaryIO | None = field(default=None, repr=False)
    _current_path: Path | None = field(default=None, repr=False)
    _current_bytes: int = 0
    _bytes: int | None = None
    #: This process's files (by name) and how many records each holds.
    _own: dict[str, int] = field(default_factory=dict, repr=False)
    #: Files from before this process (or from other processes) may be waiting.
    _look_for_others: bool = True

    # ------------------------------------------------------------------ writing

    def append(self, lines: Sequence[bytes]) -> None:
        """Append encoded records; OSError when the disk, the directory or the bound fails."""
        size = sum(len(line) for line in lines)
        if self._total_bytes() + size > self.max_bytes:
            raise OSError(f"spill files would exceed decision_log.max_spill_bytes={self.max_bytes}")
        handle = self._current or self._open_new()
        # One write call per batch: the page cache keeps it across a crash of this process.
        handle.write(b"".join(lines))
        handle.flush()
        self._current_bytes += size
        self._bytes = self._total_bytes() + size
        self.pending += len(lines)
        assert self._current_path is not None
        name = self._current_path.name
        self._own[name] = self._own.get(name, 0) + len(lines)
        if self._current_bytes >= _ROTATE_BYTES:
            self.seal()

    def seal(self) -> None:
        """Close the file being appended to (it becomes claimable); the next append opens
        another. Also called on shutdown, after an fsync, so that a restart replays it."""
        if self._current is None:
            return
        try:
            self._current.flush()
            os.fsync(self._current.fileno())
        finally:
            self._current.close()  # releases the lock
            self._current = None
            self._current_path = None
            self._current_bytes = 0

    def _open_new(self) -> BinaryIO:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = f"decisions-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        temporary = self.directory / f".{stem}.tmp"
        handle = temporary.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            final = self.directory / f"{stem}{_SUFFIX}"
            temporary.rename(final)
        except BaseException:
            handle.close()
            raise
        self._current, self._current_path, self._current_bytes = handle, final, 0
        return handle

    def _total_bytes(self) -> int:
        if self._bytes is None:
            self._bytes = sum(p.stat().st_size for p in self._files())
        return self._bytes

    # ------------------------------------------------------------------ replaying

    def waiting(self) -> bool:
        """Whether a replay may find something (cheap: no directory listing when not)."""
        return self.pending > 0 or self._look_for_others

    def claim(self) -> ClaimedFile | None:
        """Lock a finished spill file for replay (this process's own, sealed first, or one a
        dead process left); None when there is none."""
        self.seal()
        for path in self._files():
            claimed = _try_lock(path)
            if claimed is not None:
                return claimed
        # Every file left is another live process's: it replays its own. None is ours.
        self._look_for_others = False
        self.pending = 0
        self._own.clear()
        return None

    def done(self, claimed: ClaimedFile) -> None:
        """Delete a claimed file whose records are all stored, and release it."""
        try:
            size = os.fstat(claimed.handle.fileno()).st_size
            claimed.path.unlink(missing_ok=True)
        finally:
            claimed.handle.close()
        self._bytes = max(0, self._total_bytes() - size)
        self.pending = max(0, self.pending - self._own.pop(claimed.path.name, 0))

    def release(self, claimed: ClaimedFile) -> None:
        """Give a claimed file back unreplayed (the writer is stopping)."""
        claimed.handle.close()
        self._look_for_others = True

    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.endswith(_SUFFIX))
        except FileNotFoundError:
            return []


def _try_lock(path: Path) -> ClaimedFile | None:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    # Another process may have replayed and deleted it between open and lock: the path must
    # still name the inode we hold.
    try:
        same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        handle.close()
        return None
    return ClaimedFile(path, handle)
