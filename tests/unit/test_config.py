"""Settings: defaults, environment, file, overrides, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from chainproof.config import load_settings
from chainproof.errors import InvalidArgument


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("CHAINPROOF_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    s = load_settings()
    assert (s.host, s.port, s.grpc_port, s.grpc_enabled) == ("127.0.0.1", 8080, 8090, True)
    assert s.database_url == "sqlite:///./data/chainproof.db"
    assert s.max_body_bytes == 4 * 1024 * 1024
    assert s.admission.failure_mode == "closed"


def test_environment_and_nested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINPROOF_PORT", "9001")
    monkeypatch.setenv("CHAINPROOF_ADMISSION__FAILURE_MODE", "open")
    monkeypatch.setenv("CHAINPROOF_TLS__CERT_FILE", "/tmp/c.pem")
    s = load_settings()
    assert s.port == 9001 and s.admission.failure_mode == "open"
    assert s.tls.cert_file == Path("/tmp/c.pem")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("c.toml", 'port = 9100\n[admission]\nproject = "prod"\n'),
        ("c.yaml", "port: 9100\nadmission:\n  project: prod\n"),
        ("c.json", '{"port": 9100, "admission": {"project": "prod"}}'),
    ],
)
def test_files(tmp_path: Path, name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / name
    path.write_text(text)
    monkeypatch.setenv("CHAINPROOF_PORT", "1")  # the file wins over the environment
    s = load_settings(path)
    assert s.port == 9100 and s.admission.project == "prod"
    assert load_settings(path, port=9200).port == 9200  # explicit options win over the file


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.toml"
    path.write_text("grpc_enabled = false\n")
    monkeypatch.setenv("CHAINPROOF_CONFIG", str(path))
    assert load_settings().grpc_enabled is False


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("port = 'x'\n", "port"),
        ("nope = 1\n", "nope"),
        ("[admission]\nfailure_mode = 'maybe'\n", "admission.failure_mode"),
        ("port = 70000\n", "port"),
        ("= broken", "not valid toml"),
    ],
)
def test_bad_settings_name_the_problem(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument) as info:
        load_settings(path)
    assert says in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="cannot read config file"):
        load_settings(tmp_path / "absent.toml")


def test_round_trip_through_environment() -> None:
    s = load_settings(port=9300, page_token_secret="0123456789abcdef0123")
    env = s.to_environment()
    assert env["CHAINPROOF_PORT"] == "9300"
    assert env["CHAINPROOF_ADMISSION__PROJECT"] == "default"
    assert env["CHAINPROOF_PAGE_TOKEN_SECRET"] == "0123456789abcdef0123"
