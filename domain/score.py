"""The engagement score and loyalty tier: pure functions of a customer's counts."""

OPEN_POINTS = 1
CLICK_POINTS = 5
MAX_SCORE = 100
# Lowest score of each tier, highest first.
TIERS = (("platinum", 80), ("gold", 50), ("silver", 20), ("bronze", 1), ("inactive", 0))


def effective_opens(opens: int, unique_opens: int) -> int:
    """Human opens counted once: `opened` counts every open, `unique_opened` only the first of each email.

    A webhook subscribed to both sees the first open twice, so the larger count is the human one.
    Proxy opens (machine opens) are not counted here.
    """
    return max(opens, unique_opens)


def engagement_score(opens: int, unique_opens: int, clicks: int) -> int:
    """Score from 0 to 100: a human open is worth 1 point and a click 5, capped at 100."""
    points = OPEN_POINTS * effective_opens(opens, unique_opens) + CLICK_POINTS * clicks
    return min(MAX_SCORE, points)


def tier_for(score: int) -> str:
    """The loyalty tier of a score: inactive 0, bronze 1-19, silver 20-49, gold 50-79, platinum 80+."""
    return next(name for name, floor in TIERS if score >= floor)
