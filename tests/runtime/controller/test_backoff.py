import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from volumed.runtime.controller import Backoff, BackoffPolicy


def test_defaults_are_cosi_s() -> None:
    policy = BackoffPolicy()
    assert (policy.initial, policy.multiplier, policy.jitter, policy.maximum) == (0.5, 1.5, 0.5, 60.0)


def test_base_delay_grows_by_the_multiplier_and_stops_at_the_cap() -> None:
    policy = BackoffPolicy()
    assert [policy.base_delay(n) for n in (1, 2, 3)] == [0.5, 0.75, 1.125]
    assert policy.base_delay(20) == 60.0
    assert policy.base_delay(10_000) == 60.0  # no float overflow on a long streak


def test_without_jitter_delays_are_exact() -> None:
    backoff = Backoff(BackoffPolicy(initial=1.0, multiplier=2.0, jitter=0.0, maximum=5.0))
    assert [backoff.failed() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_success_resets_the_streak() -> None:
    backoff = Backoff(BackoffPolicy(initial=1.0, multiplier=2.0, jitter=0.0, maximum=100.0))
    backoff.failed()
    backoff.failed()
    assert backoff.failures == 2
    backoff.succeeded()
    assert backoff.failures == 0
    assert backoff.failed() == 1.0


@given(failures=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_jittered_delay_stays_within_half_of_the_base_and_under_the_cap(failures: int, seed: int) -> None:
    policy = BackoffPolicy()
    base = policy.base_delay(failures)
    delay = policy.delay(failures, random.Random(seed))
    assert base * 0.5 <= delay <= min(base * 1.5, policy.maximum)


def test_jitter_actually_spreads_delays() -> None:
    rng = random.Random(7)
    delays = {BackoffPolicy().delay(1, rng) for _ in range(20)}
    assert len(delays) > 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initial": 0}, "initial"),
        ({"initial": float("nan")}, "initial"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"maximum": 0.1}, "maximum"),
    ],
)
def test_bad_policy_names_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=rf"BackoffPolicy\.{field}"):
        BackoffPolicy(**kwargs)


def test_failures_must_be_positive() -> None:
    with pytest.raises(ValueError, match="failures"):
        BackoffPolicy().base_delay(0)
