"""The one backoff (adrgw/core/backoff.py): capped exponential growth with +-20 % jitter, and the jitter
never takes a wait above the cap ([ven] retry_max is "at most this long apart")."""

from __future__ import annotations

import pytest

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from adrgw.core.backoff import Backoff
from adrgw.core.supervise import restart_delay

pytestmark = pytest.mark.unit


@settings(max_examples=200, deadline=None)
@given(initial=st.floats(0.01, 100.0), cap=st.floats(0.01, 1000.0), failures=st.integers(1, 60),
       seed=st.integers(0, 2 ** 32))
def test_waits_grow_jittered_and_never_exceed_the_cap(initial: float, cap: float, failures: int, seed: int) -> None:
    rng = random.Random(seed)
    backoff = Backoff(initial, cap, uniform=rng.uniform)
    for attempt in range(failures):
        nominal = min(cap, initial * 2.0 ** attempt)
        wait = backoff.next()
        assert 0 < wait <= cap
        assert nominal * 0.8 - 1e-9 <= wait <= nominal * 1.2 + 1e-9
    backoff.reset()
    assert backoff.next() <= min(cap, initial * 1.2) + 1e-9


def test_at_the_cap_the_high_jitter_is_clipped_and_the_low_one_kept() -> None:
    high = Backoff(1.0, 10.0, uniform=lambda a, b: b)
    low = Backoff(1.0, 10.0, uniform=lambda a, b: a)
    assert [round(high.next(), 6) for _ in range(6)] == [1.2, 2.4, 4.8, 9.6, 10.0, 10.0]
    assert [round(low.next(), 6) for _ in range(6)] == [0.8, 1.6, 3.2, 6.4, 8.0, 8.0]


@given(crashes=st.integers(1, 50))
def test_task_restarts_use_the_same_rule(crashes: int) -> None:
    assert restart_delay(crashes, rng=lambda a, b: b) <= 60.0
    # the middle of the jitter range is the nominal delay (below the cap)
    nominal = min(60.0, 2.0 ** (crashes - 1))
    if nominal * 1.2 <= 60.0:
        assert restart_delay(crashes, initial=1.0, cap=60.0, rng=lambda a, b: (a + b) / 2) == pytest.approx(nominal)
