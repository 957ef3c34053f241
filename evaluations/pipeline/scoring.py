"""The final numbers of an evaluation, computed from rubric weights.

The model only ever gives per-criterion scores (1-5); the headline figures are
computed here, with decimal arithmetic so the same scores always round the same
way (0.125 becomes 0.13, not 0.12 as binary floats would have it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

MIN_SCORE: Final = 1
MAX_SCORE: Final = 5
WEIGHT_TOLERANCE: Final = Decimal("0.001")
_TWO_PLACES: Final = Decimal("0.01")
_ONE_PLACE: Final = Decimal("0.1")


class ScoringError(ValueError):
    """Scores or weights that cannot produce a meaningful result."""


@dataclass(frozen=True)
class CriterionScore:
    key: str
    name: str
    weight: Decimal | float
    score: int
    rationale: str


def as_weight(weight: Decimal | float | int | str) -> Decimal:
    """A weight as a finite, non-negative Decimal; floats go through `str`."""
    if isinstance(weight, bool):
        raise ScoringError("A weight must be a number.")
    try:
        value = weight if isinstance(weight, Decimal) else Decimal(str(weight))
    except (InvalidOperation, ValueError) as error:
        raise ScoringError(f"Invalid weight {weight!r}.") from error
    if not value.is_finite() or value < 0:
        raise ScoringError(f"Invalid weight {weight!r}.")
    return value


def check_weights(weights: Iterable[Decimal | float | int | str]) -> None:
    """Raise ScoringError unless the weights sum to 1 (within 0.001)."""
    values = [as_weight(weight) for weight in weights]
    if not values:
        raise ScoringError("There are no criteria to score.")
    total = sum(values, Decimal(0))
    if abs(total - 1) > WEIGHT_TOLERANCE:
        raise ScoringError(f"The weights sum to {total}; they must sum to 1.")


def weighted_sum(scores: Sequence[CriterionScore]) -> Decimal:
    """Σ wᵢ·sᵢ after validating weights, keys and scores."""
    check_weights(score.weight for score in scores)
    keys = [score.key for score in scores]
    if len(set(keys)) != len(keys):
        raise ScoringError("A criterion is scored more than once.")
    total = Decimal(0)
    for item in scores:
        if not isinstance(item.score, int) or isinstance(item.score, bool):
            raise ScoringError(f"The score for {item.key!r} is not an integer.")
        if not MIN_SCORE <= item.score <= MAX_SCORE:
            raise ScoringError(
                f"The score for {item.key!r} is {item.score}; it must be between "
                f"{MIN_SCORE} and {MAX_SCORE}."
            )
        total += as_weight(item.weight) * item.score
    return total


def cv_match_rate(scores: Sequence[CriterionScore]) -> float:
    """Σ wᵢ·sᵢ / 5, between 0 and 1, rounded half-up to two decimals."""
    rate = weighted_sum(scores) / MAX_SCORE
    return float(min(rate, Decimal(1)).quantize(_TWO_PLACES, rounding=ROUND_HALF_UP))


def project_score(scores: Sequence[CriterionScore]) -> float:
    """Σ wᵢ·sᵢ · 2, clamped to 1..10, rounded half-up to one decimal."""
    score = weighted_sum(scores) * 2
    score = min(max(score, Decimal(1)), Decimal(10))
    return float(score.quantize(_ONE_PLACE, rounding=ROUND_HALF_UP))
