"""A fold that Faust leaves hanging inside a rebalance is found out, restarted, and folds what it held."""

import os
from pathlib import Path
from typing import Any

import pytest

from tests.integration.pipeline import Pipeline
from tests.payloads import brevo_email
from tests.processes import eventually

pytestmark = pytest.mark.kafka

DRILL = Path(__file__).resolve().parents[1] / "drills" / "faust_hang"


async def test_a_worker_hung_at_the_end_of_a_rebalance_exits_and_its_restart_folds_the_events(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    hung = tmp_path / "hung-once"
    pipeline.worker_env = {
        "PYTHONPATH": os.pathsep.join(p for p in (str(DRILL), os.environ.get("PYTHONPATH", "")) if p),
        "TAJO_TEST_HANG_ONCE": str(hung),
        "TAJO_STALL_TIMEOUT_S": "15",
        "TAJO_REBALANCE_TIMEOUT_S": "8",  # 8 s + the 6 s session timeout: the watch's limit stays 15 s
    }
    worker = pipeline.start_worker()
    customers = [f"hang{n}@example.com" for n in range(8)]
    await pipeline.post([brevo_email("delivered", email=c) for c in customers])

    async def views() -> list[tuple[int, Any]]:
        return [await pipeline.customer(c) for c in customers]

    await eventually(
        views,
        lambda vs: all(s == 200 and v["channels"]["email"]["counts"]["delivered"] == 1 for s, v in vs),
        within=150,
    )
    assert hung.exists()  # the first fold did hang where Faust resumes its streams
    output = worker.output()
    assert "rebalance or recovery made no progress for 15s" in output
    assert "fold exited; starting it again" in output
    await eventually(pipeline.lag, lambda lag: lag == 0)
