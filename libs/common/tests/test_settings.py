import pytest
from pydantic import ValidationError

from common.settings import ServiceSettings


class ExampleSettings(ServiceSettings):
    example_port: int = 1234


def test_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("APP_ENV", "staging")
    monkeypatch.setenv("EXAMPLE_PORT", "8080")
    monkeypatch.setenv("SOMETHING_ELSE", "ignored")
    settings = ExampleSettings()
    assert settings.app_env == "staging"
    assert settings.example_port == 8080


def test_rejects_an_unknown_environment(monkeypatch):
    monkeypatch.setenv("APP_ENV", "qa")
    with pytest.raises(ValidationError, match="app_env"):
        ExampleSettings()
