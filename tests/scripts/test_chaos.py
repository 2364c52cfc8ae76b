"""A short game day (`make chaos` in small): Redis restarted after an append-only rewrite, every
process kind killed once and Redis held at its memory ceiling, under load, and the system heals
itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.chaos import KINDS, GameDay
from tests.factories import write_small_reference

pytestmark = pytest.mark.slow


def test_a_redis_restart_a_kill_of_each_process_kind_and_the_memory_ceiling_need_no_hand(
    tmp_path: Path, stack_dir: Path, model_dir: Path
) -> None:
    var = stack_dir / "var"
    var.mkdir()
    (var / "models").symlink_to(model_dir, target_is_directory=True)
    env = {
        "REFERENCE_PATH": str(write_small_reference(tmp_path / "reference.csv")),
        "MODEL_DIR": str(var / "models"),
        "EMBED_DEVICE": "cpu",
        "EMBED_THREADS": "1",
        "RECLAIM_IDLE_S": "8",
    }
    lines: list[str] = []
    day = GameDay(
        var, tmp_path / "logs", lines.append, restarts=1, rate_per_s=10, phase_s=8, env=env
    )
    report = day.run()
    assert report.passed, report.to_json() + "\n" + "\n".join(lines)
    assert report.redis_restarts == 1 and len(report.kills) == len(KINDS)
    assert report.events_accepted == report.events_sent > 0
    assert report.restarts["redis-server"] == 1
    assert report.memory_ceiling_s >= 8 and report.readyz_at_ceiling == 503
    assert all(report.restarts[name] >= 1 for name in report.kills)
