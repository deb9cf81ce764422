"""Issue 11's pure rules (cadence plan, clock steps, gateway status severity, rate-limited lines,
restart backoff) with hypothesis, and the store's fault mechanics on a real sqlite file (tmpfs for a
full disk and a read-only filesystem)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adrgw.core.clockwatch import ClockWatch, clock_step
from adrgw.core.gatewaystatus import METER_FAILING, OK, STATES, STORAGE_FAILING, VTN_UNREACHABLE, gateway_status
from adrgw.core.health import METER_FAILING_READS
from adrgw.core.ratelog import Summary
from adrgw.persist.store import RESERVE_NAME, Store
from adrgw.core.supervise import TaskHealth, restart_delay, supervised
from adrgw.core.telemetry import Sample, next_tick, plan
from adrgw.openadr.report_store import LEDGER
from adrgw.persist.samples import SampleQueue

from .support.acks import acknowledge, start_usage_request

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
times = st.floats(min_value=1e9, max_value=2e9, allow_nan=False)
intervals = st.sampled_from([0.5, 1.0, 10.0, 60.0])


# -- the sampler's cadence rule --------------------------------------------------------------------

@given(now=times, tick_offset=st.floats(-4000, 4000), interval=intervals, limit=st.floats(0.1, 5))
def test_plan_never_stamps_the_future_nor_a_long_gone_instant(now, tick_offset, interval, limit) -> None:
    tick = next_tick(now, interval) + tick_offset
    step = plan(now, tick, interval, limit)
    if step.action == "sample":
        assert tick <= now <= tick + limit  # not in the future, not late
    if step.action == "sleep":
        assert 0 < step.wait <= interval and step.next == tick
    if step.action in ("missed", "stepped_back", "sample"):
        # the next instant is on the cadence, after now, and at most one interval away
        assert step.next > now and step.next - now <= interval + 1e-6
        assert abs(step.next / interval - round(step.next / interval)) < 1e-6


def test_plan_cases() -> None:
    assert plan(100.0, 101.0, 1.0, 0.5).action == "sleep"
    assert plan(101.2, 101.0, 1.0, 0.5).action == "sample"
    assert plan(105.0, 101.0, 1.0, 0.5).action == "missed"  # SIGSTOP: woke 4 s late
    stepped = plan(100.0, 700.0, 1.0, 0.5)  # the clock went back 10 min
    assert stepped.action == "stepped_back" and stepped.next == 101.0


# -- clock steps -----------------------------------------------------------------------------------

@given(offset=st.floats(-1e6, 1e6), drift=st.floats(-0.9, 0.9), step=st.floats(1.01, 1e5), sign=st.sampled_from([-1, 1]))
def test_clock_step_ignores_drift_and_sees_steps(offset, drift, step, sign) -> None:
    assert clock_step(offset, offset + drift) is None
    found = clock_step(offset, offset + sign * step)
    assert found is not None and found == pytest.approx(sign * step)


async def test_clock_watch_calls_its_listeners_on_a_step() -> None:
    wall = [1000.0]
    mono = [5.0]
    calls: list[str] = []
    watch = ClockWatch([lambda: calls.append("schedule"), lambda: calls.append("sampler")],
                       wall=lambda: wall[0], monotonic=lambda: mono[0], period=0.01)
    task = asyncio.create_task(watch.run())
    await asyncio.sleep(0.05)
    assert calls == []
    wall[0] -= 600  # NTP steps back 10 min
    await asyncio.sleep(0.05)
    task.cancel()
    assert calls == ["schedule", "sampler"] and watch.steps == 1


# -- ADR-Gateway-Status --------------------------------------------------------------------------------

@given(online=st.booleans(), failures=st.integers(0, 10), storage_ok=st.booleans())
def test_gateway_status_shows_the_most_severe_condition(online, failures, storage_ok) -> None:
    state = gateway_status(online, failures, storage_ok)
    assert 1 <= state <= len(STATES)
    if not storage_ok:
        assert state == STORAGE_FAILING
    elif not online:
        assert state == VTN_UNREACHABLE
    elif failures >= METER_FAILING_READS:
        assert state == METER_FAILING
    else:
        assert state == OK


def test_gateway_status_state_texts_are_the_documented_ones() -> None:
    assert STATES == ("ok", "vtn-unreachable", "meter-failing", "storage-failing")


# -- rate-limited summary lines -----------------------------------------------------------------------

@given(gaps=st.lists(st.floats(0, 30), min_size=1, max_size=200))
def test_summary_lines_cover_every_failure_and_are_rate_limited(gaps) -> None:
    summary = Summary(every=60.0)
    now, covered, lines = 0.0, 0, []
    for gap in gaps:
        now += gap
        n = summary.hit(now)
        if n is not None:
            covered += n
            lines.append(now)
    assert lines[0] == gaps[0]  # the first failure is always logged
    assert all(b - a >= 60.0 for a, b in zip(lines, lines[1:]))
    assert covered + (summary.total - covered) == len(gaps) and covered <= len(gaps)
    assert summary.reset() == len(gaps) and summary.total == 0


# -- supervision --------------------------------------------------------------------------------------

@given(crashes=st.integers(1, 50))
def test_restart_delay_is_capped_exponential_with_jitter(crashes) -> None:
    low = restart_delay(crashes, rng=lambda a, b: a)
    high = restart_delay(crashes, rng=lambda a, b: b)
    assert 0 < low <= high <= 60.0 * 1.2
    assert restart_delay(crashes + 1, rng=lambda a, b: a) >= low


# -- retry backoff (registration, polls, report/opt delivery, write-through) -------------------------

draws = st.floats(0.0, 1.0)  # where in its jitter range a draw lands (0: lowest, 1: highest)


@given(attempt=st.integers(0, 5000), initial=st.floats(0.001, 100.0), cap=st.floats(0.001, 3600.0), u=draws)
def test_backoff_delay_never_waits_longer_than_the_cap(attempt, initial, cap, u) -> None:
    """Issue 18: a poll retry of 321.1 s was seen with retry_max = 300 (jitter added above the cap)."""
    from adrgw.core.backoff import backoff_delay

    delay = backoff_delay(attempt, initial, cap, uniform=lambda a, b: a + (b - a) * u)
    nominal = min(cap, initial * 2.0 ** min(attempt, 64))
    assert 0 < delay <= cap
    assert delay >= 0.8 * nominal * (1 - 1e-12)  # jitter only takes up to 20 % off the nominal delay
    # At the cap the waits keep a spread (no fleet-wide lockstep on exactly retry_max).
    if initial * 2.0 ** min(attempt, 64) >= cap:
        assert backoff_delay(attempt, initial, cap, uniform=lambda a, b: a) <= 0.8 * cap * (1 + 1e-12)


@given(cap=st.floats(1.0, 600.0), steps=st.integers(1, 40))
def test_backoff_class_stays_under_retry_max_with_real_jitter(cap, steps) -> None:
    from adrgw.core.backoff import Backoff
    from adrgw.openadr.errors import RETRY_INITIAL

    backoff = Backoff(RETRY_INITIAL, cap)
    waits = [backoff.next() for _ in range(steps)]
    assert all(0 < w <= cap for w in waits), (cap, max(waits))
    assert waits[0] >= 0.8 * min(RETRY_INITIAL, cap) * (1 - 1e-12)  # the first retry still waits ~1 s
    backoff.reset()
    assert backoff.next() <= min(cap, RETRY_INITIAL * 1.2)


def test_backoff_survives_days_of_attempts() -> None:
    """2 ** attempt as a float overflows after 1024 attempts (about 3.5 days of 300 s retries)."""
    from adrgw.core.backoff import Backoff

    backoff = Backoff(1.0, 300.0)
    backoff.attempt = 5000
    assert 240.0 <= backoff.next() <= 300.0


async def test_a_crashing_task_is_logged_restarted_and_marked_dead_meanwhile(caplog, monkeypatch) -> None:
    import adrgw.core.supervise as sup

    monkeypatch.setattr(sup, "RESTART_INITIAL", 0.05)
    runs: list[int] = []
    health = TaskHealth()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise OSError("database or disk is full")
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervised("report-delivery", flaky, health))
    seen_dead = False
    for _ in range(200):
        seen_dead = seen_dead or not health.alive
        if len(runs) >= 3:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(runs) == 3 and seen_dead and health.crashes == 2 and health.alive
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "report-delivery" in r.getMessage()]
    assert errors and any("disk is full" in (r.exc_text or "") or r.exc_info for r in errors)


# -- the store's fault mechanics ---------------------------------------------------------------------------

@pytest.fixture
def tiny_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("needs root to mount a tmpfs (CI runs as root)")
    path = tmp_path / "disk"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], check=True)
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(directory) -> None:
    with open(directory / "filler", "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                continue


async def test_full_disk_ack_commits_through_the_reserve_and_the_episode_ends_by_itself(tiny_disk, caplog) -> None:
    store = Store(tiny_disk / "state")
    await store.open()
    assert (tiny_disk / "state" / RESERVE_NAME).exists()
    queue = SampleQueue(store, max_samples=1000, ledger=LEDGER)
    await queue.open()
    await start_usage_request(store)
    for n in range(5):
        await queue.put(Sample(T0 + timedelta(seconds=n), float(n)))
    _fill(tiny_disk)
    puts_failed = 0
    for n in range(5, 400):  # grow the WAL until the full disk refuses
        try:
            await queue.put(Sample(T0 + timedelta(seconds=n), float(n)))
        except Exception:  # noqa: BLE001
            puts_failed += 1
            break
    assert puts_failed and queue.unstored == 1 and not store.healthy
    # The VTN took samples 0..2: the report cursor must commit, disk full or not (report_service does
    # exactly this store call).
    await acknowledge(store, T0 + timedelta(seconds=3))
    assert not (tiny_disk / "state" / RESERVE_NAME).exists()  # released for it
    assert len([r for r in caplog.records if r.levelno == logging.ERROR and "state storage failing" in r.getMessage()]) == 1
    assert not await store.check()  # still full: no room for the reserve
    (tiny_disk / "filler").unlink()
    assert await store.check() and store.healthy
    assert (tiny_disk / "state" / RESERVE_NAME).exists()
    await store.close()
    # after a restart the acknowledged samples are not owed any more (no duplicate), the others are
    store2 = Store(tiny_disk / "state")
    await store2.open()
    queue2 = SampleQueue(store2, max_samples=1000, ledger=LEDGER)
    await queue2.open()
    left = [s.value for _, s in await queue2.peek(1000)]
    assert not {0.0, 1.0, 2.0} & set(left) and {3.0, 4.0} <= set(left)
    await store2.close()


async def test_removed_state_file_is_written_again_with_everything(tmp_path) -> None:
    import shutil

    store = Store(tmp_path / "state")
    await store.open()
    queue = SampleQueue(store, max_samples=100, ledger=LEDGER)
    await queue.open()
    await queue.put(Sample(T0, 1.0))
    await store.set("ven_id", "ven-7")
    shutil.rmtree(tmp_path / "state")
    await queue.put(Sample(T0 + timedelta(seconds=1), 2.0))  # written to the unlinked file
    assert await store.check()  # noticed and repaired in one go
    await store.close()
    store2 = Store(tmp_path / "state")
    await store2.open()
    queue2 = SampleQueue(store2, max_samples=100, ledger=LEDGER)
    await queue2.open()
    assert [s.value for _, s in await queue2.peek(10)] == [1.0, 2.0]
    assert await store2.get("ven_id") == "ven-7"
    await store2.close()


async def test_read_only_filesystem_at_start_works_from_memory_then_moves_to_the_file(tiny_disk) -> None:
    first = Store(tiny_disk / "state")
    await first.open()
    await first.set("ven_id", "ven-1")
    await first.close()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    store = Store(tiny_disk / "state")
    await store.open()  # never raises for the disk
    assert not store.healthy
    assert await store.get("ven_id") == "ven-1"  # loaded read-only
    await store.set("opt_out", "1")  # kept in memory
    assert not await store.check()
    subprocess.run(["mount", "-o", "remount,rw", str(tiny_disk)], check=True)
    assert await store.check() and store.healthy
    await store.close()
    again = Store(tiny_disk / "state")
    await again.open()
    assert await again.get("ven_id") == "ven-1" and await again.get("opt_out") == "1"
    await again.close()


def test_summary_always_logs_a_new_kind_of_failure() -> None:
    summary = Summary(every=60.0)
    assert summary.hit(0.0, "refused: DTD") == 1
    assert summary.hit(1.0, "refused: DTD") is None
    assert summary.hit(2.0, "refused: not XML") == 2  # a new cause: its own line, covering the hidden one
    assert summary.hit(3.0, "refused: not XML") is None
    assert summary.hit(63.0, "refused: not XML") == 2


async def test_watchdog_is_not_fed_while_a_supervised_task_is_dead(tmp_path) -> None:
    import socket

    from adrgw.ops.sdnotify import Notifier

    path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.setblocking(False)
    health = TaskHealth()
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000"})  # ping every 20 ms
    task = asyncio.create_task(notifier.run_watchdog(lambda: "ok", alive=lambda: health.alive))

    def received() -> list[bytes]:
        got = []
        while True:
            try:
                got.append(server.recv(4096))
            except BlockingIOError:
                return got

    await asyncio.sleep(0.1)
    assert any(b"WATCHDOG=1" in d for d in received())
    health.dead.add("report-delivery")
    await asyncio.sleep(0.02)
    received()  # a ping in flight when the task died
    await asyncio.sleep(0.15)
    while_dead = received()
    assert while_dead and not any(b"WATCHDOG=1" in d for d in while_dead)  # STATUS only
    health.dead.clear()
    await asyncio.sleep(0.1)
    assert any(b"WATCHDOG=1" in d for d in received())
    task.cancel()
    notifier.close()
    server.close()


async def test_a_cancelled_task_that_swallowed_its_cancellation_is_not_restarted(caplog) -> None:
    """Python 3.11's wait_for can lose a cancellation; the task then fails on a closed resource.
    Shutting down, that is not a crash to restart."""
    health = TaskHealth()
    runs: list[int] = []

    async def swallows() -> None:
        runs.append(1)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # lost on the way
        raise AttributeError("'NoneType' object has no attribute 'this_application'")

    task = asyncio.create_task(supervised("meter-sampler", swallows, health))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and runs == [1] and health.crashes == 0
    assert not [r for r in caplog.records if "meter-sampler" in r.getMessage()]
