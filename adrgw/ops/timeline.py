"""The event timeline: what the VTN asked for in the last 24 h and what is scheduled, as SVG + a table.

Pure (no I/O, no clock): takes event records and ``now``. Why a record and not just the Event: the
EventController forgets an event once the VTN stops listing it, but the operator asking "did we shed
yesterday?" needs it; history.py keeps the records (with the modifications seen and when an event
disappeared), this module only draws them. Each interval is drawn with its level; randomization
(the shift from the VTN's start), modifications, cancellation and opt-out are marked.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape
from typing import Optional, Sequence

from adrgw.ops.chart import tick_step, time_label
from adrgw.persist.history import EventRecord  # what the page looks back on (kept by persist)

HISTORY = timedelta(hours=24)  # how far back the timeline looks
MIN_AHEAD = timedelta(hours=2)  # the future shown at least; more when events are scheduled later
MAX_AHEAD = timedelta(hours=24)


def window(records: Sequence[EventRecord], now: datetime,
           since: Optional[datetime] = None) -> tuple[datetime, datetime]:
    """[now - 24 h (or ``since``, when the page has less to show), now + 2 h .. 24 h]: far enough
    ahead to show the last scheduled interval."""
    ahead = MIN_AHEAD
    if since is not None:
        ahead = min(ahead, max(now - since, timedelta(minutes=10)))
    for record in records:
        end = record.end or (record.event.start if record.event.start else None)
        if end is not None and end > now:
            ahead = max(ahead, min((end - now) * 1.1 + timedelta(seconds=30), MAX_AHEAD))
    start = now - HISTORY if since is None else max(since, now - HISTORY)
    return start, now + ahead


def visible(records: Sequence[EventRecord], t0: datetime, t1: datetime) -> list[EventRecord]:
    """Records with an interval touching [t0, t1], newest start first."""
    out = []
    for record in records:
        start, end = record.event.start, record.end
        if start is None or start > t1:
            continue
        if end is not None and end < t0:
            continue
        out.append(record)
    return sorted(out, key=lambda r: r.event.start or t0, reverse=True)


def _hhmm(t: datetime) -> str:
    return f"{t:%H:%M:%S}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def marks(record: EventRecord) -> list[str]:
    """Short words for what happened to the event (also used as CSS classes)."""
    e = record.event
    out = []
    if e.cancelled:
        out.append("cancelled")
    if record.removed_at is not None:
        out.append("removed")
    if e.opted_out:
        out.append("opted-out")
    if e.offset:
        out.append("randomized")
    if e.revision.modified:
        out.append("modified")
    if e.test_event:
        out.append("test")
    return out


LANE, WIDTH, LEFT, RIGHT, TOP = 26, 960, 72, 12, 18


def render_timeline(records: Sequence[EventRecord], now: datetime, since: Optional[datetime] = None) -> str:
    """The SVG: one lane per event, its intervals as boxes labelled with their level."""
    t0, t1 = window(records, now, since)
    shown = visible(records, t0, t1)
    plot_w = WIDTH - LEFT - RIGHT
    height = TOP + LANE * max(1, len(shown)) + 22
    span = (t1 - t0).total_seconds()

    def x(t: datetime) -> float:
        return LEFT + min(max((t - t0).total_seconds(), 0.0), span) / span * plot_w

    parts = [f'<svg id="event-timeline" class="timeline" viewBox="0 0 {WIDTH} {height}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="events, last 24 h and scheduled">',
             '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" class="hatch"/></pattern></defs>',
             f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{height - TOP - 22}"/>']
    step = tick_step(span)
    first = t0.timestamp() // step * step + step
    tick = first
    while tick <= t1.timestamp():
        tx = LEFT + (tick - t0.timestamp()) / span * plot_w
        parts.append(f'<line class="grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{TOP}" y2="{height - 22}"/>'
                     f'<text class="axis" x="{tx:.1f}" y="{height - 6}" text-anchor="middle">'
                     f'{time_label(tick)}</text>')
        tick += step
    if not shown:
        parts.append(f'<text class="axis" x="{LEFT + 8}" y="{TOP + 17}">no events in this window</text>')
    for lane, record in enumerate(shown):
        e = record.event
        event_end = record.end
        top = TOP + lane * LANE + 3
        cls = " ".join(["event"] + marks(record))
        parts.append(f'<g class="{cls}" data-event-id="{escape(e.event_id)}">')
        if e.offset and e.start is not None:  # the VTN's start .. the randomized start
            parts.append(f'<line class="offset" x1="{x(e.start - e.offset):.1f}" x2="{x(e.start):.1f}" '
                         f'y1="{top + 10}" y2="{top + 10}"><title>randomized start +'
                         f'{e.offset.total_seconds():.0f} s</title></line>')
        for interval in e.intervals:
            end = interval.end if interval.end is not None else max(now, t1)
            planned_end = end
            if event_end is not None and end > event_end:
                end = event_end
            if end <= interval.start:
                # cut by a cancellation (or removal) before it started: drawn as planned, hollow
                x1, x2 = x(interval.start), x(planned_end)
                parts.append(f'<rect class="void" data-planned-level="{interval.level:g}" x="{x1:.1f}" y="{top}" '
                             f'width="{max(x2 - x1, 1.5):.1f}" height="{LANE - 6}"><title>{escape(e.event_id)} '
                             f'{_hhmm(interval.start)}..{_hhmm(planned_end)} UTC level {interval.level:g}: '
                             f'not applied (cancelled)</title></rect>')
                continue
            x1, x2 = x(interval.start), x(end)
            if x2 < LEFT or x1 > LEFT + plot_w:
                continue
            fill = ' fill="url(#hatch)"' if e.opted_out else ""
            parts.append(f'<rect class="interval level-{min(int(interval.level), 4) if interval.level >= 0 else 0}"'
                         f'{fill} data-level="{interval.level:g}" x="{x1:.1f}" y="{top}" '
                         f'width="{max(x2 - x1, 1.5):.1f}" height="{LANE - 6}"><title>{escape(e.event_id)} '
                         f'{_hhmm(interval.start)}..{_hhmm(end)} UTC level {interval.level:g}</title></rect>')
            if x2 - x1 > 14:
                parts.append(f'<text class="level" x="{(x1 + x2) / 2:.1f}" y="{top + 15}" '
                             f'text-anchor="middle">{interval.level:g}</text>')
        if (e.cancelled or record.removed_at is not None) and event_end is not None:
            cx = x(event_end)
            parts.append(f'<line class="cancel" x1="{cx:.1f}" x2="{cx:.1f}" y1="{top - 2}" '
                         f'y2="{top + LANE - 4}"><title>cancelled</title></line>')
        label = e.event_id[:18] + ("…" if len(e.event_id) > 18 else "")
        parts.append(f'<text class="name" x="{LEFT - 4}" y="{top + 14}" text-anchor="end">{escape(label[:8])}</text>')
        parts.append("</g>")
    nx = x(now)
    parts.append(f'<line class="now" x1="{nx:.1f}" x2="{nx:.1f}" y1="{TOP - 6}" y2="{height - 22}"/>'
                 f'<text class="axis now-label" x="{nx:.1f}" y="{TOP - 8}" text-anchor="middle">now</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_event_table(records: Sequence[EventRecord], now: datetime, since: Optional[datetime] = None) -> str:
    """The same events as rows: intervals with levels, and every mark spelled out."""
    t0, t1 = window(records, now, since)
    shown = visible(records, t0, t1)
    if not shown:
        return '<p class="muted" id="no-events">No event in the last 24 h and none scheduled.</p>'
    rows = ['<table id="events"><thead><tr><th>event</th><th>status</th><th>priority</th>'
            '<th>intervals (UTC, level)</th><th>notes</th></tr></thead><tbody>']
    for record in shown:
        e = record.event
        intervals = "".join(
            f'<span class="interval" data-level="{i.level:g}">{_hhmm(i.start)}–'
            f'{_hhmm(i.end) if i.end else "open"} <b>{i.level:g}</b></span>' for i in e.intervals)
        notes = []
        if e.offset:
            notes.append(f"randomized: start +{e.offset.total_seconds():.0f} s "
                         f"(window {e.start_after.total_seconds():.0f} s)")
        if e.revision.modified:
            seen = ", ".join(f"{n} at {_hhmm(t)}" for n, t in record.modifications if n != "0")
            notes.append(f"modification {e.revision.label}" + (f" (received: {seen})" if seen else ""))
        if e.cancelled:
            if e.cancel_at is not None:
                notes.append(f"cancelled, randomized end {_hhmm(e.cancel_at)}")
            else:
                notes.append("cancelled" + (f" at {_hhmm(record.cancelled_at)}" if record.cancelled_at else ""))
        if record.removed_at is not None:
            notes.append(f"no longer listed by the VTN since {_hhmm(record.removed_at)} (implied cancellation)")
        if e.opted_out:
            notes.append("opted out")
        if e.test_event:
            notes.append("test event")
        status = e.status(now)
        remaining = ""
        if status == "active" and record.end is not None:
            remaining = f" ({_duration((record.end - now).total_seconds())} left)"
        rows.append(f'<tr class="{" ".join(["event"] + marks(record))}" data-event-id="{escape(e.event_id)}">'
                    f'<td class="id">{escape(e.event_id)}</td><td class="status">{status}{remaining}</td>'
                    f'<td>{e.priority}</td><td class="intervals">{intervals}</td>'
                    f'<td class="notes">{escape("; ".join(notes))}</td></tr>')
    rows.append("</tbody></table>")
    return "".join(rows)
