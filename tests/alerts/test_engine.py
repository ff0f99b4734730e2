"""The pure rule engine: limits, deadband, delays, rate, stale data, faults, schedules at boundaries."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from alerts.engine import Engine, Limits, RuleConfig, Schedule

TZ = ZoneInfo("Asia/Shanghai")


def at(*args) -> float:
    return datetime(*args, tzinfo=TZ).timestamp()


def kinds(changes):
    return [(c.kind, c.active) for c in changes]


def test_high_raises_at_limit_and_deadband_stops_chatter():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=25.0), deadband=2.0))
    t = at(2026, 6, 1, 12)
    assert kinds(engine.evaluate(1, 24.9, True, t)) == []
    assert kinds(engine.evaluate(1, 25.0, True, t + 1)) == [("high", True)]
    # Chattering around the limit inside the deadband does not clear or re-raise.
    for i, v in enumerate([24.5, 25.3, 23.1, 24.9, 23.01]):
        assert engine.evaluate(1, v, True, t + 2 + i) == [], v
    assert kinds(engine.evaluate(1, 22.9, True, t + 10)) == [("high", False)]
    assert kinds(engine.evaluate(1, 24.0, True, t + 11)) == []


def test_high_high_and_high_are_separate_conditions():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=20, high_high=50)))
    t = at(2026, 6, 1)
    assert kinds(engine.evaluate(1, 60, True, t)) == [("high_high", True), ("high", True)]
    assert kinds(engine.evaluate(1, 30, True, t + 1)) == [("high_high", False)]
    assert kinds(engine.evaluate(1, 10, True, t + 2)) == [("high", False)]


def test_low_and_low_low_use_deadband_upwards():
    engine = Engine()
    engine.configure(7, RuleConfig(limits=Limits(low=1.0, low_low=0.5), deadband=0.2))
    t = at(2026, 1, 1)
    assert kinds(engine.evaluate(7, 0.4, True, t)) == [("low", True), ("low_low", True)]
    assert kinds(engine.evaluate(7, 0.65, True, t + 1)) == []  # within low_low deadband
    assert kinds(engine.evaluate(7, 0.71, True, t + 2)) == [("low_low", False)]
    assert kinds(engine.evaluate(7, 1.21, True, t + 3)) == [("low", False)]


def test_on_delay_requires_the_condition_to_hold_continuously():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=10), on_delay=5))
    t = at(2026, 6, 1)
    assert engine.evaluate(1, 11, True, t) == []
    assert engine.evaluate(1, 11, True, t + 4.9) == []
    assert engine.evaluate(1, 9, True, t + 5) == []  # dropped out: the delay restarts
    assert engine.evaluate(1, 11, True, t + 6) == []
    assert engine.evaluate(1, 11, True, t + 10.9) == []
    assert kinds(engine.evaluate(1, 11, True, t + 11)) == [("high", True)]


def test_off_delay_requires_the_condition_to_stay_away():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=10), off_delay=3))
    t = at(2026, 6, 1)
    assert kinds(engine.evaluate(1, 12, True, t)) == [("high", True)]
    assert engine.evaluate(1, 5, True, t + 1) == []
    assert engine.evaluate(1, 12, True, t + 2) == []  # back: clearing restarts
    assert engine.evaluate(1, 5, True, t + 3) == []
    assert engine.evaluate(1, 5, True, t + 5.9) == []
    assert kinds(engine.evaluate(1, 5, True, t + 6)) == [("high", False)]


def test_rate_of_change_per_minute_over_the_window():
    engine = Engine()
    engine.configure(1, RuleConfig(rate_limit=6.0, rate_window=2.0))  # 6 units/min = 0.1 per second
    t = at(2026, 6, 1)
    engine.evaluate(1, 10, True, t)
    assert engine.evaluate(1, 10.05, True, t + 1) == []  # 3/min over 1 s
    assert kinds(engine.evaluate(1, 10.5, True, t + 2)) == [("rate", True)]  # 15/min over 2 s
    assert engine.evaluate(1, 10.5, True, t + 3) == []  # 13.5/min since t + 1: still rising fast
    assert kinds(engine.evaluate(1, 10.5, True, t + 4)) == [("rate", False)]  # flat over the window


def test_sensor_noise_at_10_hz_is_not_a_rate_of_change():
    import random

    engine = Engine()
    engine.configure(1, RuleConfig(rate_limit=10.0))  # 10 °C/min, the default 10 s window
    t = at(2026, 6, 1)
    rng = random.Random(7)
    changes = []
    for i in range(600):  # a minute of 25 °C ± 0.5 °C every 100 ms
        changes += engine.evaluate(1, 25 + rng.uniform(-0.5, 0.5), True, t + i / 10)
    assert changes == []
    for i in range(600, 700):  # then a real rise of 1 °C per second
        changes += engine.evaluate(1, 25 + (i - 600) / 10, True, t + i / 10)
    assert kinds(changes) == [("rate", True)]


def test_bad_quality_is_a_sensor_fault_but_a_timeout_is_not():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=10)))
    t = at(2026, 6, 1)
    assert engine.evaluate(1, None, False, t, "timeout") == []
    assert kinds(engine.evaluate(1, None, False, t + 1, "sentinel")) == [("sensor_fault", True)]
    assert engine.evaluate(1, None, False, t + 2, "sentinel") == []
    assert kinds(engine.evaluate(1, 3, True, t + 3)) == [("sensor_fault", False)]
    assert kinds(engine.evaluate(1, float("nan"), True, t + 4)) == [("sensor_fault", True)]


def test_stale_data_raises_after_silence_and_clears_on_good_reading():
    engine = Engine()
    engine.configure(1, RuleConfig(stale_after=30))
    t = at(2026, 6, 1)
    engine.evaluate(1, 1, True, t)
    assert engine.check_stale(t + 29) == []
    assert kinds(engine.check_stale(t + 30)) == [("stale", True)]
    assert engine.check_stale(t + 60) == []  # reported once
    assert kinds(engine.evaluate(1, 1, True, t + 61)) == [("stale", False)]


def test_device_offline_reports_changes_only():
    engine = Engine()
    t = at(2026, 6, 1)
    assert kinds(engine.device_status(3, False, t)) == [("device_offline", True)]
    assert engine.device_status(3, False, t + 1) == []
    assert kinds(engine.device_status(3, True, t + 2)) == [("device_offline", False)]


SUMMER = Schedule(limits=Limits(high=15), month_from=6, month_to=9, name="summer")
DAYTIME = Schedule(limits=Limits(high=18), time_from=time(8), time_to=time(20), name="day")


def test_summer_schedule_switches_at_local_midnight_of_june_first():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=20), schedules=(SUMMER,)))
    assert engine.evaluate(1, 17, True, at(2026, 5, 31, 23, 59, 59)) == []
    # Same value one second later is over the summer limit.
    assert kinds(engine.evaluate(1, 17, True, at(2026, 6, 1, 0, 0, 0))) == [("high", True)]
    # Back to the normal limit on October 1st: 17 < 20 clears.
    assert engine.evaluate(1, 17, True, at(2026, 9, 30, 23, 59, 59, 999000)) == []
    assert kinds(engine.evaluate(1, 17, True, at(2026, 10, 1, 0, 0, 0))) == [("high", False)]


def test_wrapping_month_range_covers_new_year():
    winter = Schedule(limits=Limits(low=5), month_from=11, month_to=2)
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(low=2), schedules=(winter,)))
    assert kinds(engine.evaluate(1, 4, True, at(2026, 1, 15))) == [("low", True)]
    assert kinds(engine.evaluate(1, 4, True, at(2026, 3, 1))) == [("low", False)]


def test_time_of_day_schedule_switches_exactly_at_the_boundary():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=20), schedules=(DAYTIME,)))
    assert engine.evaluate(1, 19, True, at(2026, 3, 1, 7, 59, 59, 999999)) == []
    assert kinds(engine.evaluate(1, 19, True, at(2026, 3, 1, 8, 0, 0))) == [("high", True)]
    assert engine.evaluate(1, 19, True, at(2026, 3, 1, 19, 59, 59)) == []
    assert kinds(engine.evaluate(1, 19, True, at(2026, 3, 1, 20, 0, 0))) == [("high", False)]
    # The next morning the cached window is left behind correctly.
    assert kinds(engine.evaluate(1, 19, True, at(2026, 3, 2, 8, 0, 1))) == [("high", True)]


def test_overnight_schedule_and_first_match_wins():
    night = Schedule(limits=Limits(high=12), time_from=time(22), time_to=time(6))
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=20), schedules=(night, SUMMER)))
    assert kinds(engine.evaluate(1, 13, True, at(2026, 7, 1, 23))) == [("high", True)]  # night (12)
    assert engine.evaluate(1, 14, True, at(2026, 7, 2, 5, 59)) == []
    assert kinds(engine.evaluate(1, 14, True, at(2026, 7, 2, 6))) == [("high", False)]  # summer (15)


def test_operating_mode_schedule():
    startup = Schedule(limits=Limits(high=30), mode="startup")
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=20), schedules=(startup,)))
    engine.set_mode(1, "startup")
    t = at(2026, 6, 1)
    assert engine.evaluate(1, 25, True, t) == []
    engine.set_mode(1, "")
    assert kinds(engine.evaluate(1, 25, True, t + 1)) == [("high", True)]


def test_reconfigure_keeps_active_conditions():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=10)))
    t = at(2026, 6, 1)
    assert kinds(engine.evaluate(1, 11, True, t)) == [("high", True)]
    engine.configure(1, RuleConfig(limits=Limits(high=30)))
    assert kinds(engine.evaluate(1, 11, True, t + 1)) == [("high", False)]


def test_stale_is_not_raised_for_channels_this_process_never_heard():
    engine = Engine()
    engine.configure(1, RuleConfig(stale_after=30))
    assert engine.check_stale(at(2026, 6, 1)) == []
    assert engine.check_stale(at(2026, 6, 2)) == []


def test_stale_counts_from_first_bad_reading_when_no_good_one_came():
    engine = Engine()
    engine.configure(1, RuleConfig(stale_after=30, fault_enabled=False))
    t = at(2026, 6, 1)
    engine.evaluate(1, None, False, t, "timeout")
    assert kinds(engine.check_stale(t + 30)) == [("stale", True)]


def test_sync_active_aligns_conditions_with_another_process():
    engine = Engine()
    engine.configure(1, RuleConfig(limits=Limits(high=10)))
    t = at(2026, 6, 1)
    engine.sync_active(1, {"high"})  # another worker raised it
    assert kinds(engine.evaluate(1, 5, True, t)) == [("high", False)]
    engine.evaluate(1, 12, True, t + 1)
    engine.sync_active(1, set())  # another worker saw it clear
    assert kinds(engine.evaluate(1, 12, True, t + 2)) == [("high", True)]
