"""Log lines: JSON objects carrying the ids bound where each record was made."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from neosl import logs
from neosl.config import ConfigError, Settings, load_settings, new_key

KEY = new_key()


def settings(fmt: str) -> Settings:
    return load_settings(
        {
            "DATABASE_URL": "postgresql://u@db.example:5432/neosl",
            "REDIS_URL": "redis://cache.example:6379/0",
            "NEO_RPC_URL": "http://neo.example:10332",
            "NSL_SECRET_KEY": KEY,
            "NSL_SECRETS_KEY": KEY,
            "NSL_LOG_FORMAT": fmt,
        }
    )


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the root logger writes once configured as the services configure it."""
    out = io.StringIO()
    factory = logging.getLogRecordFactory()
    root = logging.getLogger()
    level = root.level
    logs.configure(settings("json"), out)
    yield out
    for handler in [h for h in root.handlers if getattr(h, "neosl", False)]:
        root.removeHandler(handler)
    logging.setLogRecordFactory(factory)
    root.setLevel(level)


def records(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_a_record_carries_the_ids_bound_around_it(lines: io.StringIO) -> None:
    log = logging.getLogger("neosl.test")
    log.info("before")
    with logs.context(request_id="r-1", execution_id=7, trigger_id=None):
        log.info("inside %s", "work")
        with logs.context(task_id="t-9"):
            log.warning("nested")
    log.info("after")
    got = records(lines)
    assert [r["message"] for r in got] == ["before", "inside work", "nested", "after"]
    assert "request_id" not in got[0]
    assert (got[1]["request_id"], got[1]["execution_id"]) == ("r-1", 7)
    assert "trigger_id" not in got[1]  # None is left out
    assert (got[2]["task_id"], got[2]["request_id"], got[2]["level"]) == ("t-9", "r-1", "WARNING")
    assert "request_id" not in got[3]
    assert "task_id" not in got[3]
    assert got[1]["logger"] == "neosl.test"
    assert str(got[1]["ts"]).endswith("+00:00")


def test_ids_do_not_leak_between_threads(lines: io.StringIO) -> None:
    log = logging.getLogger("neosl.test")
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        entered.wait(5)
        log.info("other thread")
        release.set()

    thread = threading.Thread(target=other)
    thread.start()
    with logs.context(request_id="mine"):
        entered.set()
        release.wait(5)
    thread.join(5)
    (line,) = [r for r in records(lines) if r["message"] == "other thread"]
    assert "request_id" not in line


def test_an_exception_is_one_json_line(lines: io.StringIO) -> None:
    log = logging.getLogger("neosl.test")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    (line,) = records(lines)
    assert "ValueError: boom" in str(line["exception"])
    assert len(lines.getvalue().strip().splitlines()) == 1


def test_configure_twice_keeps_one_handler(lines: io.StringIO) -> None:
    logs.configure(settings("text"), lines)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "neosl", False)]
    assert len(ours) == 1
    with logs.context(feed_id=3):
        logging.getLogger("neosl.test").error("plain")
    assert lines.getvalue().strip().endswith("ERROR neosl.test: plain [feed_id=3]")


@pytest.mark.parametrize(
    ("offered", "kept"),
    [
        ("abc-123_x.y:z", True),
        (None, False),
        ("", False),
        ("has space", False),
        ("x" * 65, False),
        ('{"json": 1}', False),
        ("line\nbreak", False),
    ],
)
def test_a_client_request_id_is_kept_only_when_plain(offered: str | None, kept: bool) -> None:
    got = logs.request_id(offered)
    assert (got == offered) is kept
    assert 0 < len(got) <= 64


def test_log_format_is_checked() -> None:
    with pytest.raises(ConfigError, match="NSL_LOG_FORMAT must be json or text"):
        settings("xml")
