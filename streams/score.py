"""The engagement score: a pure function of a customer's counts."""

OPEN_POINTS = 1
CLICK_POINTS = 5
MAX_SCORE = 100


def effective_opens(opens: int, unique_opens: int) -> int:
    """Opens counted once: `opened` counts every open, `unique_opened` only the first of each email.

    A webhook subscribed to both sees the first open twice, so the larger count is the human one.
    """
    return max(opens, unique_opens)


def engagement_score(opens: int, unique_opens: int, clicks: int) -> int:
    """Score from 0 to 100: an open is worth 1 point and a click 5, capped at 100."""
    points = OPEN_POINTS * effective_opens(opens, unique_opens) + CLICK_POINTS * clicks
    return min(MAX_SCORE, points)
