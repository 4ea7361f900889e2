"""The stall guard: only an owned partition that is behind and whose committed offset stays put counts."""

from streams.stall import StallGuard


def test_a_partition_behind_with_a_committed_offset_that_does_not_move_is_stalled() -> None:
    guard = StallGuard(timeout_s=30)
    owned = {0, 1}
    ends = {0: 10, 1: 5}
    assert guard.stalled(owned, {0: 4, 1: 5}, ends, now=0) == []
    assert guard.stalled(owned, {0: 4, 1: 5}, ends, now=29) == []
    assert guard.stalled(owned, {0: 4, 1: 5}, ends, now=30) == [0]


def test_progress_or_being_caught_up_restarts_the_clock() -> None:
    guard = StallGuard(timeout_s=30)
    ends = {0: 10}
    guard.stalled({0}, {0: 4}, ends, now=0)
    assert guard.stalled({0}, {0: 6}, ends, now=25) == []  # moved: the clock starts again
    assert guard.stalled({0}, {0: 6}, ends, now=50) == []
    assert guard.stalled({0}, {0: 6}, ends, now=55) == [0]
    assert guard.stalled({0}, {0: 10}, ends, now=100) == []  # caught up
    assert guard.stalled({0}, {0: 10}, {0: 12}, now=101) == []
    assert guard.stalled({0}, {0: 10}, {0: 12}, now=130) == []
    assert guard.stalled({0}, {0: 10}, {0: 12}, now=131) == [0]


def test_partitions_no_longer_owned_or_a_reset_are_forgotten() -> None:
    guard = StallGuard(timeout_s=30)
    guard.stalled({0}, {}, {0: 3}, now=0)  # never committed: offset 0
    assert guard.stalled(set(), {}, {0: 3}, now=10) == []
    assert guard.stalled({0}, {}, {0: 3}, now=35) == []  # owned again: a new clock
    guard.reset()
    assert guard.stalled({0}, {}, {0: 3}, now=60) == []
    assert guard.stalled({0}, {}, {0: 3}, now=90) == [0]
