"""Logs: one structured format for chainproof's events and its dependencies' log records."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from chainproof.bootstrap import configure_logging
from chainproof.config import load_settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_every_line_is_one_json_object(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(load_settings(log_format="json", log_level="info"))
    structlog.get_logger("chainproof.test").warning("decision recorded", uid="u-1")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("chainproof.test").debug("below the level: not shown")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["event"] == "decision recorded" and lines[0]["uid"] == "u-1"
    assert lines[0]["level"] == "warning" and lines[0]["logger"] == "chainproof.test"
    assert (
        lines[1]["event"] == "Started server process [42]" and lines[1]["logger"] == "uvicorn.error"
    )
    assert all("timestamp" in line for line in lines)
    assert len(lines) == 2
