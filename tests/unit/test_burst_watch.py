"""When the embedded fold steps aside for the ingester: only during a burst, and only for so long."""

from streams.embedded import PAUSE_S, BurstWatch

RATE = 5_000.0
MAX_DEFER_S = 30.0


def test_a_steady_trickle_is_folded_at_once() -> None:
    watch = BurstWatch(RATE, MAX_DEFER_S)
    assert watch.pause(head=0, now=0.0) == 0.0  # nothing to compare with yet
    assert watch.pause(head=1_000, now=1.0) == 0.0  # 1,000 events/s: Brevo's trickle
    assert watch.pause(head=5_999, now=2.0) == 0.0  # just under the burst rate


def test_a_burst_makes_the_fold_wait_until_it_ends() -> None:
    watch = BurstWatch(RATE, MAX_DEFER_S)
    watch.pause(head=0, now=0.0)
    assert watch.pause(head=1_000, now=0.1) == PAUSE_S  # 10,000 events/s
    assert watch.pause(head=2_000, now=0.2) == PAUSE_S
    assert watch.pause(head=2_100, now=0.3) == 0.0  # 1,000 events/s: the burst is over


def test_the_fold_waits_no_longer_than_max_defer_even_while_the_burst_goes_on() -> None:
    watch = BurstWatch(RATE, MAX_DEFER_S)
    watch.pause(head=0, now=0.0)
    assert watch.pause(head=10_000, now=1.0) == PAUSE_S
    assert watch.pause(head=300_000, now=MAX_DEFER_S - 0.1) == PAUSE_S
    assert watch.pause(head=310_000, now=MAX_DEFER_S) == 0.0  # the views may not be later than this
    assert watch.pause(head=320_000, now=MAX_DEFER_S + 1) == 0.0  # and stay on until caught up


def test_catching_up_starts_a_new_deferral() -> None:
    watch = BurstWatch(RATE, MAX_DEFER_S)
    watch.pause(head=0, now=0.0)
    assert watch.pause(head=400_000, now=MAX_DEFER_S) == 0.0
    watch.caught_up()
    assert watch.pause(head=410_000, now=MAX_DEFER_S + 1) == PAUSE_S  # a new burst, a new allowance
