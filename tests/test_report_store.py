"""The report service's durable state in the real sqlite store: requests and cursors survive a reopen,
what counts as undelivered, history retention, and the backlog bound."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from adrgw.core.telemetry import Sample
from adrgw.openadr import report_store as S
from adrgw.persist.samples import SampleQueue
from adrgw.persist.store import Store

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
t0 = T0.timestamp()


async def fill(queue: SampleQueue, n: int) -> None:
    for k in range(n):
        await queue.put(Sample(T0 + timedelta(seconds=10 * k), float(k)))


async def test_requests_and_cursors_survive_a_reopen(tmp_path) -> None:
    store = Store(tmp_path)
    await store.open()
    await store.call(S.create_tables)
    await store.call(S.save_report_requests, [], [("tu-1", "usage", '{"x": 1}', None),
                                                  ("hu-1", "history", '{"x": 2}', t0)])
    await store.call(S.commit_report_cursor, "tu-1", t0 + 50, "TU", False)
    await store.call(S.commit_report_cursor, "tu-1", t0 + 40, "TU", False)  # the watermark never goes back
    await store.call(S.commit_report_cursor, "hu-1", t0 + 60, None, True)  # ended
    await store.close()
    again = Store(tmp_path)
    await again.open()
    rows, marks = await again.call(S.load_report_requests)
    assert rows == [('{"x": 1}', t0 + 40)]
    assert marks == {"TU": t0 + 50}
    await again.close()


async def test_undelivered_history_kept_and_pruned(tmp_path) -> None:
    store = Store(tmp_path)
    await store.open()
    queue = SampleQueue(store, max_samples=100, ledger=S.LEDGER)
    await queue.open()
    await fill(queue, 10)
    assert len(queue) == 10  # nothing delivered yet: everything is owed
    assert await store.call(S.prune_samples, t0 + 1000) == 0
    await store.call(S.save_report_requests, [], [("tu-1", "usage", "{}", t0),
                                                  ("hu-1", "history", "{}", t0 - 3600)])
    await store.call(S.commit_report_cursor, "tu-1", t0 + 50, "TU", False)
    await queue.recount()
    assert len(queue) == 5  # a history request reaching back does not make samples "undelivered"
    # delivered samples older than the history horizon go; undelivered ones never
    assert await store.call(S.prune_samples, t0 + 30) == 3
    assert await store.call(S.prune_samples, t0 + 1000) == 2
    assert [s.timestamp for _, s in await queue.peek(10)] == [T0 + timedelta(seconds=10 * k) for k in range(5, 10)]
    await store.close()


async def test_backlog_bound_drops_only_undelivered_samples_and_keeps_history(tmp_path) -> None:
    store = Store(tmp_path)
    await store.open()
    queue = SampleQueue(store, max_samples=3, ledger=S.LEDGER)
    await queue.open()
    await store.call(S.save_report_requests, [], [("tu-1", "usage", "{}", t0)])
    await store.call(S.commit_report_cursor, "tu-1", t0 + 20, "TU", False)  # 00 and 10 delivered
    await fill(queue, 7)  # 20..60 undelivered: 5 > 3
    assert len(queue) == 3 and queue.dropped == 2
    values = await queue.window(["", "x"], t0 - 1, t0 + 100, 100, 10.0)
    assert sorted(values[""]) == [t0, t0 + 10, t0 + 40, t0 + 50, t0 + 60]
    assert values["x"] == {}
    assert await queue.oldest([""]) == t0
    await store.close()
