"""The executor's memory sizing: the sum, and the check of its own container's limit."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from neosl_executor import sizing


def test_the_sum_counts_every_process_at_its_most() -> None:
    # 160 MB + 2 executions x 64 MB + 2 processes x (512 + 32) MB.
    assert sizing.executor_memory_mb(2, 2) == 160 + 128 + 1088
    # Threads beyond the processes run nothing more at once.
    assert sizing.executor_memory_mb(64, 2) == sizing.executor_memory_mb(2, 2)
    assert sizing.executor_memory_mb(16, 16, max_function_mb=128) == 160 + 16 * 64 + 16 * 160


@pytest.mark.parametrize(
    ("content", "limit"), [("max\n", None), ("1073741824\n", 1024), ("garbage", None)]
)
def test_the_containers_limit_is_read(tmp_path: Path, content: str, limit: int | None) -> None:
    path = tmp_path / "memory.max"
    path.write_text(content)
    assert sizing.container_limit_mb(path) == limit
    assert sizing.container_limit_mb(tmp_path / "absent") is None


def test_a_limit_below_the_sum_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "memory.max"
    path.write_text(str(2 * 2**30))
    with caplog.at_level(logging.WARNING, logger="neosl_executor.sizing"):
        assert sizing.check_memory_limit(2, 2, path) is True
        assert sizing.check_memory_limit(16, 16, path) is False
    (record,) = caplog.records
    assert "2048 MB" in record.getMessage()
    assert "NSL_SANDBOX_PROCESSES" in record.getMessage()
