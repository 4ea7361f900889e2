"""The transition watch: a rebalance or recovery counts as stuck only when nothing of it moves."""

from streams.stall import TransitionWatch, transition_limit


def test_a_transition_whose_progress_stays_the_same_for_the_timeout_is_stuck() -> None:
    watch = TransitionWatch(timeout_s=20)
    assert not watch.stuck((3, 0, 0), now=0)
    assert not watch.stuck((3, 0, 0), now=19.9)
    assert watch.stuck((3, 0, 0), now=20)


def test_a_new_generation_or_changelog_records_read_restart_the_clock() -> None:
    watch = TransitionWatch(timeout_s=20)
    watch.stuck((3, 100), now=0)
    assert not watch.stuck((3, 150), now=15)  # recovery read 50 changelog records
    assert not watch.stuck((4, 150), now=30)  # the group moved to a new generation
    assert not watch.stuck((4, 150), now=49)
    assert watch.stuck((4, 150), now=50)


def test_a_transition_that_ended_is_forgotten() -> None:
    watch = TransitionWatch(timeout_s=20)
    watch.stuck((3,), now=0)
    watch.over()
    assert not watch.stuck((3,), now=25)  # the same generation, but a new transition began at 25
    assert watch.stuck((3,), now=45)


def test_the_limit_covers_a_healthy_member_waiting_in_a_join() -> None:
    assert transition_limit(60, 60, 30) == 90  # the defaults: rebalance timeout plus session timeout
    assert transition_limit(120, 60, 30) == 120  # a longer stall timeout stands
    assert transition_limit(15, 8, 6) == 15
