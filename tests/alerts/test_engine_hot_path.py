"""The engine as the poller drives it (~100,000 readings a second): a batch's changes collected in
one list, a bounded rate-of-change history per channel, limits re-resolved when a rule changes."""

from __future__ import annotations

import math

from alerts.engine import RATE_SAMPLES_PER_WINDOW, Engine, Limits, RuleConfig
from tests.alerts.test_engine import at, kinds


def test_changes_of_a_batch_go_to_the_given_list():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=10)))
    engine.configure(2, RuleConfig(limits=Limits(low=5)))
    t = at(2026, 6, 1)
    out = []
    assert engine.evaluate(1, 12, True, t, "good", out) is out
    engine.evaluate(2, 3, True, t, "good", out)
    engine.evaluate(3, 99, True, t, "good", out)  # an unknown channel adds nothing
    assert sorted((c.key, c.kind, c.active) for c in out) == [(1, "high", True), (2, "low", True)]


def test_rate_history_stays_bounded_at_10_hz():
    engine = Engine()
    engine.configure(1, RuleConfig(rate_limit=10.0))  # default 10 s window
    t = at(2026, 6, 1)
    for i in range(1200):  # two minutes at 10 Hz
        engine.evaluate(1, 25.0, True, t + i / 10)
    assert len(engine.channels[1].rate_samples) <= RATE_SAMPLES_PER_WINDOW + 1


def test_a_new_rule_replaces_the_limits_and_the_smoothing_at_the_next_reading():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=50), rate_limit=600.0, rate_window=10.0))
    t = at(2026, 6, 1)
    for i in range(50):
        assert engine.evaluate(1, 40.0, True, t + i / 10) == []
    engine.configure(1, RuleConfig(limits=Limits(high=30), rate_limit=600.0, rate_window=2.0))
    assert kinds(engine.evaluate(1, 40.0, True, t + 5.0)) == [("high", True)]
    # the 2 s window's smoothing factor, not the 10 s one cached before the change
    state = engine.channels[1]
    assert abs(state.rate_alpha - (1 - math.exp(-state.rate_dt / 0.5))) < 1e-12
