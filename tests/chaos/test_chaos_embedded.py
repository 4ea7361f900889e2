"""Chaos on the embedded log: `kill -9` of `tajo-events serve` (ingester, fold and views in one process)
under a ledger of signed webhooks, three times; nothing acknowledged is lost or counted twice.

Each time the killed server is started again on the same data folder and port, and the test waits
until it answers 200s again. In the end each customer's `delivered` count in the views must equal
the ledger's, and `tajo-events replay --verify` must find the live state equal to a rebuild.
"""

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.chaos.ledger import Ledger, describe, settled_differences
from tests.chaos.services import Service
from tests.processes import eventually, run_command

pytestmark = pytest.mark.chaos

SECRET = b"chaos-embedded-secret"
API_TOKEN = "chaos-embedded-api-token"
KILLS = 3
ACKS_BETWEEN_KILLS = 150


@pytest.mark.timeout(240)
async def test_kill_9_of_serve_under_load_loses_and_doubles_nothing(tmp_path: Path) -> None:
    env = {
        "TAJO_DATA_DIR": str(tmp_path / "data"),
        "BREVO_WEBHOOK_SECRET": SECRET.decode(),
        "BREVO_WEBHOOK_TOKEN": "",
        "BREVO_API_KEY": "",
        "KAFKA_BOOTSTRAP_SERVERS": "",
        "TAJO_API_TOKEN": API_TOKEN,
    }
    serve = Service(["serve"], env, tmp_path / "serve.log", "listening on")
    await serve.start()
    ledger = Ledger(lambda: f"{serve.base_url}/webhooks/brevo", SECRET).start()
    timeline: list[str] = []
    loop = asyncio.get_running_loop()

    async def acknowledging(more: int) -> None:
        target = ledger.events + more

        async def events() -> int:
            ledger.check()
            return ledger.events

        await eventually(events, lambda count: count >= target, within=120)

    try:
        for kill in range(1, KILLS + 1):
            await acknowledging(ACKS_BETWEEN_KILLS)
            started, at = loop.time(), ledger.events
            await serve.kill()
            await serve.start()  # the same data folder and port
            await acknowledging(1)
            timeline.append(
                f"kill -9 serve ({kill}) at {at} events: 200s again after {loop.time() - started:.1f}s"
            )
        await ledger.stop()
        timeline.append(ledger.summary())

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            found = await settled_differences(session, f"{serve.base_url}/api", API_TOKEN, ledger, within=60)
    finally:
        await ledger.close()
        serve.stop()
    code, out, err = await run_command(["replay", "--verify"], env, within=120)
    problems = [describe(found, ledger) if isinstance(found, dict) else found] if found else []
    if code != 0:
        problems.append(f"tajo-events replay --verify exited {code}:\n{out[-3000:]}\n{err[-2000:]}")
    print("\n".join(timeline))  # shown with a failure, or with -s
    assert not problems, "\n\n".join([*problems, *timeline])
    assert "equal" in out.lower(), out[-2000:]
