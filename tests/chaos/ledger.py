"""A ledger of signed webhooks posted under a bounded load while the chaos suite kills things.

A few senders each post bodies of one to three `delivered` events (distinct message ids, so
distinct event ids) for a fixed set of customers, at a bounded rate, to 127.0.0.1. A body that does
not get a 200 (a 503 while the broker is down, a connection refused or cut short by a kill) is sent
again as it was, as Brevo retries, until a 200 comes: only then are its events written in the ledger,
once. A body's first attempts may still have reached the log, so the log may hold an event twice;
the views must count it once. In the end every customer's `delivered` count must equal the ledger.
"""

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Callable

import aiohttp
import orjson

from ingest.auth import sign
from samples.brevo import Raw, brevo_email
from schemas.brevo import event_id
from tests.processes import eventually

CUSTOMERS = [f"chaos{n:02d}@example.com" for n in range(40)]
SENDERS = 4
RATE = 80.0  # events per second, all senders together: a load the 2-core machine carries beside the kills
SIZES = (1, 2, 1, 3)  # events per body, in turn
T0 = 1_767_225_600_000  # epoch ms of the first event
ATTEMPT_TIMEOUT_S = 10.0  # one POST: the ingester answers a 503 within 3 s when the log is down
RETRY_BACKOFF_S = 0.3  # Brevo's retry, shortened: not a wait for a condition
GIVE_UP_S = 120.0  # a body still without a 200 after this fails the test


class Ledger:
    """Posts signed webhooks to `url` in the background; remembers what was acknowledged with a 200."""

    def __init__(self, url: Callable[[], str], secret: bytes) -> None:
        self._url = url  # asked at each attempt: a restarted server may listen elsewhere
        self._secret = secret
        self.acknowledged: Counter[str] = Counter()  # address -> events acknowledged
        self.event_ids: set[str] = set()
        self.posts = 0
        self.refused: Counter[str] = Counter()  # what the attempts without a 200 got
        self._numbers = itertools.count()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    @property
    def events(self) -> int:
        """Events acknowledged so far."""
        return self.acknowledged.total()

    def start(self) -> "Ledger":
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_S))
        self._tasks = [asyncio.create_task(self._send()) for _ in range(SENDERS)]
        return self

    def check(self) -> None:
        """Raises what stopped a sender, if one failed."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError("a sender of the ledger failed") from task.exception()

    async def stop(self) -> None:
        """Stops sending once each sender's body in hand has its 200; raises what stopped one if it failed."""
        self._stopping.set()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stops at once, whatever happened."""
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def summary(self) -> str:
        refused = ", ".join(f"{what}: {n}" for what, n in self.refused.most_common(6))
        acknowledged = f"{self.events} events acknowledged in {self.posts} posts"
        return f"ledger: {acknowledged}; not 200: {refused or 'none'}"

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._stopping.is_set():
            number = next(self._numbers)
            events = [self._event(number, i) for i in range(SIZES[number % len(SIZES)])]
            await self._deliver(events)
            due = max(due + len(events) * SENDERS / RATE, loop.time() - 1.0)  # paced, no catching up
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, due - loop.time())):
                    await self._stopping.wait()

    def _event(self, number: int, index: int) -> Raw:
        sequence = number * 3 + index
        address = CUSTOMERS[(sequence * 7) % len(CUSTOMERS)]
        message_id = f"<chaos-{number}-{index}@tajo.test>"
        return brevo_email("delivered", email=address, ts_epoch=T0 + sequence, **{"message-id": message_id})

    async def _deliver(self, events: list[Raw]) -> None:
        assert self._session is not None
        body = orjson.dumps(events[0] if len(events) == 1 else events)
        headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(self._secret, body)}
        ids = [event_id(raw) for raw in events]
        loop = asyncio.get_running_loop()
        give_up = loop.time() + GIVE_UP_S
        while True:
            self.posts += 1
            try:
                async with self._session.post(self._url(), data=body, headers=headers) as response:
                    status, answer = response.status, await response.read()
            except (aiohttp.ClientError, TimeoutError) as error:
                status, answer = 0, type(error).__name__.encode()
            if status == 200:
                assert orjson.loads(answer)["event_ids"] == ids
                break
            if status not in (0, 503):
                raise AssertionError(f"a ledger body was refused with {status}: {answer[:300]!r}")
            self.refused[str(status or answer.decode())] += 1
            if loop.time() > give_up:
                last = f"{status} {answer[:300]!r}"
                raise AssertionError(f"no 200 for a ledger body within {GIVE_UP_S}s; last: {last}")
            await asyncio.sleep(RETRY_BACKOFF_S)
        new = [i for i in ids if i not in self.event_ids]
        assert len(new) == len(ids), f"event ids acknowledged twice: {ids}"
        self.event_ids.update(ids)
        self.acknowledged.update(str(raw["email"]) for raw in events)


def differences(shown: dict[str, int], ledger: Ledger) -> dict[str, tuple[int, int]]:
    """Customers whose view differs from the ledger: address -> (shown, acknowledged)."""
    return {a: (shown[a], ledger.acknowledged[a]) for a in CUSTOMERS if shown[a] != ledger.acknowledged[a]}


def describe(differing: dict[str, tuple[int, int]], ledger: Ledger) -> str:
    """The differences in words: how many acknowledged events are missing, how many counted twice."""
    lost = sum(max(0, acked - shown) for shown, acked in differing.values())
    doubled = sum(max(0, shown - acked) for shown, acked in differing.values())
    lines = [
        f"{len(differing)} of {len(CUSTOMERS)} customers differ from the ledger: {lost} acknowledged events "
        f"missing, {doubled} counted twice (of {ledger.events} acknowledged)"
    ]
    lines += [f"  {a}: view {shown}, ledger {acked}" for a, (shown, acked) in sorted(differing.items())]
    return "\n".join(lines)


async def delivered_counts(session: aiohttp.ClientSession, base_url: str, token: str) -> dict[str, int] | str:
    """Each customer's `delivered` count in the views under `base_url` (0 when unknown); why not, if not."""
    headers = {"Authorization": f"Bearer {token}"}

    async def count(address: str) -> int:
        async with session.get(f"{base_url}/customers/{address}", headers=headers) as response:
            if response.status == 404:
                return 0
            assert response.status == 200, await response.text()
            view = await response.json()
            delivered: int = view["channels"]["email"]["counts"]["delivered"]
            return delivered

    try:
        counts = await asyncio.gather(*(count(address) for address in CUSTOMERS))
    except (aiohttp.ClientError, TimeoutError) as error:  # the views are not served yet
        return repr(error)
    return dict(zip(CUSTOMERS, counts, strict=True))


async def settled_differences(
    session: aiohttp.ClientSession, base_url: str, token: str, ledger: Ledger, *, within: float
) -> dict[str, tuple[int, int]] | str:
    """Waits (the changelog round trip) until every view under `base_url` shows its ledger count or one
    overshoots it; returns the differences then (empty: none), or why the views could not be read.
    Past `within`, the differences of a last reading: views that stay short of the ledger."""

    async def differing() -> dict[str, tuple[int, int]] | str:
        shown = await delivered_counts(session, base_url, token)
        return shown if isinstance(shown, str) else differences(shown, ledger)

    def settled(found: dict[str, tuple[int, int]] | str) -> bool:  # equal, or one already beyond
        return not isinstance(found, str) and (not found or any(s > a for s, a in found.values()))

    try:
        return await eventually(differing, settled, within=within)
    except AssertionError:  # some views stay short of the ledger: the caller lists them
        return await differing()
