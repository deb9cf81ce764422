"""The EiOpt queue's rules (adrgw/opt.py), without a VTN: what ADR-Opt-Out changes put in the queue,
and that the queue and the opts in force survive a restart through the real state store."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adrgw.openadr.opt import OptService
from adrgw.persist.store import Store

pytestmark = pytest.mark.unit

events = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 3)), max_size=4)
steps = st.lists(st.one_of(st.tuples(st.just("out"), events), st.tuples(st.just("in"), st.just([]))), max_size=12)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_every_cancel_follows_its_create_and_opt_in_clears_what_is_in_force(steps) -> None:
    async def run() -> None:
        service = OptService(client=None, registered=asyncio.Event(), store=None, retry_max=1)  # type: ignore[arg-type]
        for kind, evs in steps:
            if kind == "out":
                await service.opted_out(evs)
                for event_id, _ in evs:
                    assert event_id in service.in_force
            else:
                await service.opted_in()
                assert not service.in_force
        created: dict[str, str] = {}
        cancelled: set[str] = set()
        for m in service.queue:
            if m.kind == "create":
                assert m.opt_id not in created
                created[m.opt_id] = m.event_id
            else:
                assert created.get(m.opt_id) == m.event_id and m.opt_id not in cancelled
                cancelled.add(m.opt_id)
        # in force = created and not cancelled; never two opts in force for one event
        assert {o.opt_id for o in service.in_force.values()} == set(created) - cancelled
        assert len(service.in_force) == len({o.event_id for o in service.in_force.values()})

    asyncio.run(run())


async def test_queue_and_opts_in_force_survive_a_restart(tmp_path) -> None:
    store = Store(tmp_path)
    await store.open()
    first = OptService(client=None, registered=asyncio.Event(), store=store, retry_max=1)  # type: ignore[arg-type]
    await first.opted_out([("e1", 0), ("e2", 3)])
    await first.opted_in()
    await first.opted_out([("e3", 1)])
    await store.close()
    store = Store(tmp_path)
    await store.open()
    again = OptService(client=None, registered=asyncio.Event(), store=store, retry_max=1)  # type: ignore[arg-type]
    await again.restore()
    assert again.queue == first.queue and again.in_force == first.in_force
    assert [m.kind for m in again.queue] == ["create", "create", "cancel", "cancel", "create"]
    await store.close()


async def test_past_the_bound_the_oldest_message_is_dropped_and_counted(monkeypatch, caplog) -> None:
    import adrgw.openadr.opt as opt

    monkeypatch.setattr(opt, "MAX_QUEUE", 3)
    service = OptService(client=None, registered=asyncio.Event(), store=None, retry_max=1)  # type: ignore[arg-type]
    await service.opted_out([("a", 0), ("b", 0)])
    await service.opted_in()
    assert service.dropped == 1 and len(service.queue) == 3
    assert [(m.kind, m.event_id) for m in service.queue] == [("create", "b"), ("cancel", "a"), ("cancel", "b")]
    assert any("EiOpt queue full" in r.getMessage() for r in caplog.records)
