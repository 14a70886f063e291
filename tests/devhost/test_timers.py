"""Durable timers on a clock: the earliest wake-up booked, fired in order, cancels respected."""

import asyncio
from datetime import UTC, datetime, timedelta

from devhost.clock import Clock
from devhost.engine.timers import TimerService
from devhost.testing import VirtualClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def service(clock):
    fired = []
    return TimerService(clock, lambda key, due: fired.append((key[2], due))), fired


def test_timers_fire_in_due_order_each_when_the_clock_reaches_it():
    clock = VirtualClock(T0)
    timers, fired = service(clock)
    timers.arm(("a", "e", 1), T0 + timedelta(minutes=3))
    timers.arm(("a", "e", 2), T0 + timedelta(minutes=1))
    timers.arm(("b", "e", 3), T0 + timedelta(minutes=2))
    assert clock.next_wakeup() == T0 + timedelta(minutes=1), "the earliest is booked"
    clock.move_to(T0 + timedelta(seconds=59))
    assert fired == []
    clock.move_to(T0 + timedelta(minutes=2))
    assert [timer_id for timer_id, _ in fired] == [2, 3]
    clock.move_to(T0 + timedelta(hours=1))
    assert fired == [
        (2, T0 + timedelta(minutes=1)),
        (3, T0 + timedelta(minutes=2)),
        (1, T0 + timedelta(minutes=3)),
    ]
    assert clock.next_wakeup() is None


def test_canceled_timers_never_fire():
    clock = VirtualClock(T0)
    timers, fired = service(clock)
    timers.arm(("a", "e", 1), T0 + timedelta(minutes=1))
    timers.arm(("a", "e", 2), T0 + timedelta(minutes=2))
    timers.arm(("b", "e", 3), T0 + timedelta(minutes=3))
    timers.cancel(("a", "e", 1))
    timers.cancel_instance("b")
    clock.move_to(T0 + timedelta(hours=1))
    assert [timer_id for timer_id, _ in fired] == [2]


def test_a_closed_service_books_nothing_more_on_the_clock():
    clock = VirtualClock(T0)
    timers, fired = service(clock)
    timers.arm(("a", "e", 1), T0 + timedelta(minutes=1))
    timers.close()
    assert clock.next_wakeup() is None
    clock.move_to(T0 + timedelta(hours=1))
    assert fired == []


def test_a_callback_booked_on_the_virtual_clock_sees_its_own_moment():
    clock = VirtualClock(T0)
    seen = []
    clock.call_at(T0 + timedelta(seconds=30), lambda: seen.append(clock.now()))
    assert clock.move_to(T0 + timedelta(minutes=5)) == 1
    assert seen == [T0 + timedelta(seconds=30)] and clock.now() == T0 + timedelta(minutes=5)
    clock.move_to(T0)
    assert clock.now() == T0 + timedelta(minutes=5), "time never goes back"


def test_on_the_real_clock_a_due_timer_fires_on_the_running_loop():
    async def scenario():
        done = asyncio.Event()
        fired = []

        def on_fire(key, due):
            fired.append(key[2])
            done.set()

        timers = TimerService(Clock(), on_fire)
        timers.arm(("a", "e", 1), datetime.now(UTC) - timedelta(seconds=1))
        await asyncio.wait_for(done.wait(), 5)
        timers.close()
        return fired

    assert asyncio.run(scenario()) == [1]
