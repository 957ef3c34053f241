from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from evaluations.pipeline.scoring import (
    CriterionScore,
    ScoringError,
    check_weights,
    cv_match_rate,
    project_score,
)


def scores(*pairs: tuple[str | float | Decimal, int]) -> list[CriterionScore]:
    return [
        CriterionScore(
            key=f"c{position}",
            name=f"Criterion {position}",
            weight=Decimal(weight) if isinstance(weight, str) else weight,
            score=score,
            rationale="because",
        )
        for position, (weight, score) in enumerate(pairs)
    ]


DEFAULT_CV = ("0.40", "0.25", "0.20", "0.15")
DEFAULT_PROJECT = ("0.30", "0.25", "0.20", "0.15", "0.10")


def test_cv_match_rate_examples() -> None:
    assert cv_match_rate(scores(*zip(DEFAULT_CV, (5, 5, 5, 5), strict=True))) == 1.0
    assert cv_match_rate(scores(*zip(DEFAULT_CV, (1, 1, 1, 1), strict=True))) == 0.2
    # 0.4*4 + 0.25*3 + 0.2*5 + 0.15*2 = 3.65 -> 0.73
    assert cv_match_rate(scores(*zip(DEFAULT_CV, (4, 3, 5, 2), strict=True))) == 0.73


def test_project_score_examples() -> None:
    project = zip(DEFAULT_PROJECT, (5, 4, 3, 2, 1), strict=True)
    # 0.3*5 + 0.25*4 + 0.2*3 + 0.15*2 + 0.1*1 = 3.5 -> 7.0
    assert project_score(scores(*project)) == 7.0
    assert project_score(scores(*zip(DEFAULT_PROJECT, [5] * 5, strict=True))) == 10.0
    # The lowest possible weighted sum is 1, so the floor of the clamp is 2.
    assert project_score(scores(*zip(DEFAULT_PROJECT, [1] * 5, strict=True))) == 2.0


def test_rounding_is_half_up_and_exact() -> None:
    # Σ = 0.875*2 + 0.125*3 = 2.125. Binary floats round 0.425 down to 0.42 and
    # round 4.25 to even (4.2); decimal half-up gives 0.43 and 4.3.
    items = scores(("0.875", 2), ("0.125", 3))
    assert round(2.125 / 5, 2) == 0.42
    assert cv_match_rate(items) == 0.43
    assert project_score(items) == 4.3
    # Σ = 1.125: 0.225 -> 0.23 and 2.25 -> 2.3.
    items = scores(("0.5", 1), ("0.125", 2), ("0.375", 1))
    assert cv_match_rate(items) == 0.23
    assert project_score(items) == 2.3


def test_float_weights_are_taken_at_their_decimal_value() -> None:
    # 0.1 as a float is slightly more than 0.1; Decimal(str()) keeps it exact.
    floats = scores(*((0.1, 3) for _ in range(10)))
    assert cv_match_rate(floats) == 0.6
    assert project_score(floats) == 6.0


def test_weights_must_sum_to_one() -> None:
    with pytest.raises(ScoringError, match="sum"):
        cv_match_rate(scores(("0.5", 3), ("0.4", 3)))
    with pytest.raises(ScoringError, match="sum"):
        project_score(scores(("0.6", 3), ("0.6", 3)))
    # Within the 0.001 tolerance.
    assert cv_match_rate(scores(("0.5", 5), ("0.4995", 5))) == 1.0
    check_weights(["0.3334", "0.3333", "0.3333"])


@pytest.mark.parametrize("bad", [0, 6, -1, 10])
def test_scores_outside_one_to_five_are_refused(bad: int) -> None:
    with pytest.raises(ScoringError, match="between 1 and 5"):
        cv_match_rate(scores(("0.5", 3), ("0.5", bad)))
    with pytest.raises(ScoringError, match="between 1 and 5"):
        project_score(scores(("0.5", bad), ("0.5", 3)))


@pytest.mark.parametrize("bad", [3.0, 2.5, "3", True, None])
def test_scores_must_be_integers(bad: object) -> None:
    items = scores(("0.5", 3), ("0.5", 3))
    items[1] = CriterionScore("c1", "C", Decimal("0.5"), bad, "r")  # type: ignore[arg-type]
    with pytest.raises(ScoringError, match="integer"):
        cv_match_rate(items)


@pytest.mark.parametrize("bad", ["-0.5", "NaN", "Infinity", "abc"])
def test_invalid_weights_are_refused(bad: str) -> None:
    with pytest.raises(ScoringError):
        check_weights([bad, "1.5"])


def test_empty_and_duplicate_criteria_are_refused() -> None:
    with pytest.raises(ScoringError):
        cv_match_rate([])
    duplicated = scores(("0.5", 3), ("0.5", 3))
    duplicated[1] = CriterionScore("c0", "Again", Decimal("0.5"), 3, "r")
    with pytest.raises(ScoringError, match="more than once"):
        project_score(duplicated)


# --- Properties --------------------------------------------------------------


@st.composite
def rubrics(draw: st.DrawFn) -> tuple[list[Decimal], list[int]]:
    """Random weights normalised to sum exactly to 1, and random scores."""
    count = draw(st.integers(min_value=1, max_value=8))
    raw = draw(st.lists(st.integers(1, 1000), min_size=count, max_size=count))
    total = sum(raw)
    weights = [Decimal(value) / Decimal(total) for value in raw[:-1]]
    weights.append(Decimal(1) - sum(weights, Decimal(0)))
    values = draw(st.lists(st.integers(1, 5), min_size=count, max_size=count))
    return weights, values


def _build(weights: list[Decimal], values: list[int]) -> list[CriterionScore]:
    return [
        CriterionScore(f"c{i}", f"C{i}", weight, value, "r")
        for i, (weight, value) in enumerate(zip(weights, values, strict=True))
    ]


@given(rubrics())
def test_results_stay_in_bounds(rubric: tuple[list[Decimal], list[int]]) -> None:
    items = _build(*rubric)
    assert 0.2 <= cv_match_rate(items) <= 1.0
    assert 2.0 <= project_score(items) <= 10.0


@given(rubrics())
def test_results_match_the_formula(rubric: tuple[list[Decimal], list[int]]) -> None:
    weights, values = rubric
    total = sum((w * v for w, v in zip(weights, values, strict=True)), Decimal(0))
    items = _build(weights, values)
    assert abs(cv_match_rate(items) - float(total / 5)) <= 0.005 + 1e-9
    assert abs(project_score(items) - min(10.0, float(total * 2))) <= 0.05 + 1e-9
    # Equal to the formula rounded half-up, not just close to it.
    expected = (total / 5).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert cv_match_rate(items) == float(expected)


@given(rubrics(), st.data())
def test_raising_one_score_never_lowers_the_result(
    rubric: tuple[list[Decimal], list[int]], data: st.DataObject
) -> None:
    weights, values = rubric
    index = data.draw(st.integers(0, len(values) - 1))
    assume(values[index] < 5)
    raised = list(values)
    raised[index] += data.draw(st.integers(1, 5 - values[index]))
    before, after = _build(weights, values), _build(weights, raised)
    assert cv_match_rate(after) >= cv_match_rate(before)
    assert project_score(after) >= project_score(before)


@given(rubrics())
def test_uniform_scores_give_exact_results(
    rubric: tuple[list[Decimal], list[int]],
) -> None:
    weights, values = rubric
    uniform = [values[0]] * len(values)
    items = _build(weights, uniform)
    assert cv_match_rate(items) == values[0] / 5
    assert project_score(items) == values[0] * 2


@given(
    rubrics(),
    st.integers(min_value=2, max_value=999).map(lambda n: Decimal(n) / 1000),
)
def test_weights_far_from_one_are_always_refused(
    rubric: tuple[list[Decimal], list[int]], factor: Decimal
) -> None:
    weights, values = rubric
    scaled = [w * factor for w in weights]
    assume(abs(sum(scaled, Decimal(0)) - 1) > Decimal("0.001"))
    with pytest.raises(ScoringError):
        cv_match_rate(_build(scaled, values))
