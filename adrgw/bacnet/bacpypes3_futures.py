"""Workaround for a bacpypes3 0.0.110 bug: "Task exception was never retrieved ... InvalidStateError".

The bug: when a confirmed request gets no answer, ``ClientSSM.timer_expired`` starts
``await_confirmation_timeout()`` as a fire-and-forget task (``asyncio.ensure_future``, result never
awaited). Once the retries are used up, that task aborts the transaction and calls
``Application.confirmation``, which does ``future.set_exception(abort)`` on the request's future
without checking ``future.done()``. The gateway bounds every read with ``asyncio.wait_for`` (the
stack's own timeout is not a hard bound), so that future is usually cancelled already:
``set_exception`` raises ``InvalidStateError`` inside the forgotten task, and asyncio prints
"ERROR asyncio: Task exception was never retrieved" with a 16-line traceback whenever the task is
garbage-collected: again and again with a silent meter or a lost router, although nothing is wrong
with the gateway (the read already failed cleanly as "no answer within N s").

A second site of the same bug: an answer that arrives after the gateway gave up on the request
(``asyncio.wait_for`` cancelled its future) makes ``Application.confirmation`` call
``future.set_result`` on the cancelled future; the ``InvalidStateError`` climbs the datagram-receive
chain and bacpypes3 logs it with a 30-line traceback.

The fix, at the source: every task ``timer_expired`` starts gets a done-callback that retrieves its
result, and a late answer for an abandoned request is dropped with a DEBUG line. ``InvalidStateError`` (the expected case above) is dropped with a DEBUG line; any other
exception is still logged at ERROR with its traceback, so a real bug in the stack stays visible.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("adrgw.bacnet")

_INSTALLED_FLAG = "_adrgw_retrieves_timeout_task_exceptions"


def _retrieve(task: "asyncio.Future[Any]") -> None:
    if task.cancelled():
        return
    exc = task.exception()  # retrieving it is what keeps asyncio from printing it
    if exc is None:
        return
    if isinstance(exc, asyncio.InvalidStateError):
        log.debug("bacpypes3 timeout of an already finished request ignored (%r)", exc)
        return
    log.error("bacpypes3 transaction timer task failed", exc_info=(type(exc), exc, exc.__traceback__))


def install() -> bool:
    """Patch ``ClientSSM.timer_expired`` and ``Application.confirmation`` once per process; True if
    patched now."""
    from bacpypes3.app import Application
    from bacpypes3.appservice import ClientSSM

    if getattr(ClientSSM, _INSTALLED_FLAG, False):
        return False
    original_confirmation = Application.confirmation

    async def confirmation(self: Any, apdu: Any) -> None:
        try:
            await original_confirmation(self, apdu)
        except asyncio.InvalidStateError:
            log.debug("bacpypes3: late answer from %s for an abandoned request dropped", apdu.pduSource)

    Application.confirmation = confirmation  # type: ignore[method-assign]
    original = ClientSSM.timer_expired

    def timer_expired(self: Any) -> None:
        before = getattr(self, "_timer_expired_request", None)
        original(self)
        task = getattr(self, "_timer_expired_request", None)
        if task is not None and task is not before and isinstance(task, asyncio.Future):
            task.add_done_callback(_retrieve)

    ClientSSM.timer_expired = timer_expired  # type: ignore[method-assign]
    setattr(ClientSSM, _INSTALLED_FLAG, True)
    return True
