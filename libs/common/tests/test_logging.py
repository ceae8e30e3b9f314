import json
import logging

import pytest

from common.logging import configure_logging


@pytest.fixture(autouse=True)
def _restore_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_json_lines_carry_service_extra_fields_and_exceptions(capsys):
    configure_logging("backend", "INFO", json_logs=True)
    log = logging.getLogger("backend.api")
    log.debug("hidden below the level")
    log.info("meeting %s queued", "m1", extra={"meeting_id": "m1"})
    try:
        raise ValueError("bad audio")
    except ValueError:
        log.exception("transcription failed")

    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["service"] == "backend"
    assert first["msg"] == "meeting m1 queued"
    assert first["meeting_id"] == "m1"
    assert first["level"] == "info"
    assert "ValueError: bad audio" in second["exc"]


def test_plain_text_for_humans(capsys):
    configure_logging("worker", "DEBUG", json_logs=False)
    logging.getLogger("worker").debug("hello")
    err = capsys.readouterr().err
    assert "DEBUG" in err and "worker" in err and "hello" in err
    assert not err.lstrip().startswith("{")
