"""Acknowledge samples in a test the way the report service does: a telemetry request's cursor and its
specifier's delivered watermark, committed with ``report_store.commit_report_cursor`` (critical: on a full disk
the store releases its reserve file for it)."""

from __future__ import annotations

from datetime import datetime

from adrgw.openadr import report_store as S
from adrgw.persist.store import Store

REQUEST_ID = "test-usage"
SPECIFIER = "TELEMETRY_USAGE_test"


async def start_usage_request(store: Store) -> None:
    """A running telemetry request, saved as the report service saves an accepted one."""
    await store.call(S.save_report_requests, [], [(REQUEST_ID, "usage", "{}", None)])


async def acknowledge(store: Store, before: datetime) -> None:
    """The VTN acknowledged every sample before ``before`` (start_usage_request first)."""
    await store.call(S.commit_report_cursor, REQUEST_ID, before.timestamp(), SPECIFIER, False, critical=True)
