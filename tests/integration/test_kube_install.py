"""The kube-apiserver test helper installs its built binary so that a second test run on the
same machine can neither break nor be broken by one that is running it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kube import install


def _runnable_copy(tmp_path: Path, name: str) -> Path:
    """A real executable that blocks until its stdin closes (``cat``), copied to ``name``."""
    cat = shutil.which("cat")
    assert cat is not None
    path = tmp_path / name
    shutil.copy2(cat, path)
    return path


def test_a_binary_being_run_is_replaced_not_written_into(tmp_path: Path) -> None:
    target = _runnable_copy(tmp_path, "kube-apiserver")
    running = subprocess.Popen([str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        # What the helper used to do fails while the binary runs: the attack on a second run.
        with pytest.raises(OSError, match="Text file busy"):
            shutil.copy(_runnable_copy(tmp_path, "cat2"), target)
        newer = tmp_path / "newer"
        newer.write_bytes(Path(sys.executable).read_bytes())
        newer.chmod(0o755)
        install(newer, target)
        assert target.read_bytes() == newer.read_bytes()
        assert target.stat().st_mode & 0o111
        assert not list(tmp_path.glob(".kube-apiserver.*")), "no partial copy is left behind"
        # The running process kept its own file and still works.
        out, _ = running.communicate(b"still here", timeout=10)
        assert out == b"still here"
    finally:
        running.kill()
        running.wait()
