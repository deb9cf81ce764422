"""The status page: a PageView -> one self-contained HTML document (inline CSS and SVG, no scripts).

Pure and cheap: no I/O, no clock (``view.now``), so it is unit-tested and benchmarked alone
(bench/bench_page.py). Self-contained because a building network has no internet: no fonts, scripts
or images from elsewhere. It refreshes itself with a meta refresh. Nothing secret is ever shown:
the page gets only the PageView, which holds no keys, certificates or URLs with credentials.
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from typing import Optional

from adrgw.ops.chart import render_chart
from adrgw.ops.statusview import PageView
from adrgw.ops.timeline import render_event_table, render_timeline

REFRESH_SECONDS = 10

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#1d2733;background:#f6f7f9}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 6px}
.muted{color:#6b7785}.card{background:#fff;border:1px solid #d9dee4;border-radius:6px;padding:10px 14px}
.now{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:8px}
.now div{background:#fff;border:1px solid #d9dee4;border-radius:6px;padding:6px 10px}
.now .k{font-size:12px;color:#6b7785}.now .v{font-size:18px;font-weight:600}
.healthy{color:#1b7f3b}.degraded{color:#b3261e}
table{border-collapse:collapse;width:100%;background:#fff}td,th{border:1px solid #d9dee4;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#eef1f4;font-weight:600}
span.interval{display:inline-block;margin:1px 6px 1px 0;padding:0 4px;border-radius:3px;background:#e6eefb}
tr.cancelled td,tr.removed td{color:#8a3b36}tr.opted-out td{background:#fbf6e6}
svg{width:100%;height:auto;display:block}svg .plot{fill:#fff;stroke:#c5ccd4}svg .grid{stroke:#edf0f3}
svg .axis{font-size:11px;fill:#6b7785}svg .line{fill:none;stroke:#1f6fd1;stroke-width:1.3}
svg circle.line{fill:#1f6fd1}svg .gap{fill:#f3d9d7;opacity:.6}svg .delivered{fill:#3aa35b}
svg .queued{fill:#f29c38}svg .now{stroke:#b3261e;stroke-dasharray:3 2}svg .now-label{fill:#b3261e}
svg .interval{stroke:#1d2733;stroke-width:.5}svg .level-0{fill:#dbe7f7}svg .level-1{fill:#9cc3ef}
svg .level-2{fill:#5c9be0}svg .level-3{fill:#2f6fbf}svg .level-4{fill:#1b4a86}
svg .level{font-size:11px;fill:#fff;font-weight:600}svg .cancelled .interval{opacity:.45}
svg .cancel{stroke:#b3261e;stroke-width:2.5}svg .void{fill:none;stroke:#b3261e;stroke-dasharray:3 2}svg .offset{stroke:#7a5bbf;stroke-width:3}
svg .hatch{stroke:#b58a00;stroke-width:3}svg .name{font-size:11px;fill:#1d2733}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;height:8px;
margin-right:4px;vertical-align:middle}
"""


def _when(t: Optional[datetime], now: datetime) -> str:
    if t is None:
        return "never"
    ago = (now - t).total_seconds()
    return f"{t:%Y-%m-%d %H:%M:%S} UTC ({_ago(ago)})"


def _ago(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _span(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _fact(key: str, value: str, ident: str, cls: str = "") -> str:
    return (f'<div id="{ident}"><span class="k">{escape(key)}</span><br>'
            f'<span class="v {cls}">{escape(value)}</span></div>')


def render_page(view: PageView) -> str:
    v = view
    now = v.now
    facts = [
        _fact("ADR-Event-Level", f"{v.level:g}", "level"),
        _fact("event status", v.status, "status"),
        _fact("active event", (f"{v.active_event} ({_span(v.remaining)} left)" if v.remaining else v.active_event)
              if v.active_event else ("none" if not v.start_in else f"next in {_span(v.start_in)}"), "active-event"),
        _fact("opt-out", "active" if v.opt_out else "inactive", "opt-out"),
        _fact("VTN", "online" if v.vtn_online else "offline", "vtn-online",
              "healthy" if v.vtn_online else "degraded"),
        _fact("registration", f"registered as {v.ven_id}" if v.registered else
              f"not registered (attempt {v.registration_attempts})", "registration"),
        _fact("last report", _when(v.last_report, now), "last-report"),
        _fact("report queue", f"{v.queue_depth} sample(s)" +
              (f", oldest {_ago((now - v.oldest_queued).total_seconds())}" if v.oldest_queued else ""),
              "queue-depth"),
        _fact("health", v.health.word, "health", v.health.word),
    ]
    if v.gateway_status is not None:
        facts.append(_fact("ADR-Gateway-Status", f"{v.gateway_status[1]} ({v.gateway_status[0]})",
                           "gateway-status"))
    reasons = "".join(f"<li>{escape(r)}</li>" for r in v.health.reasons)
    t0, t1 = v.chart_window
    since = datetime.fromtimestamp(t0, timezone.utc)
    writes = ""
    if v.writes:
        rows = "".join(
            f'<tr data-target="{escape(w.name)}"><td>{escape(w.name)}</td><td>{escape(w.target)}</td>'
            f'<td>{w.priority}</td><td class="holding">{escape(w.holding or "relinquished (NULL)")}</td>'
            f'<td>{escape(w.wanted or "relinquish")}</td><td>{escape(_when(w.confirmed_at, now))}</td>'
            f'<td>{w.failures}</td></tr>' for w in v.writes)
        writes = ('<h2>Write-through targets</h2><table id="writes"><thead><tr><th>target</th><th>point</th>'
                  '<th>priority</th><th>holds now</th><th>wanted</th><th>last confirmation</th>'
                  f'<th>failures in a row</th></tr></thead><tbody>{rows}</tbody></table>')
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<title>{escape(v.device)}: ADR gateway status</title><style>{CSS}</style></head><body>'
        f'<h1>ADR gateway status</h1><p class="muted">{escape(v.device)} · meter {escape(v.meter)} · '
        f'{now:%Y-%m-%d %H:%M:%S} UTC · refreshes every {REFRESH_SECONDS} s</p>'
        f'<section class="now">{"".join(facts)}</section>'
        + (f'<ul id="health-reasons" class="degraded">{reasons}</ul>' if reasons else "")
        + '<h2>Events: last 24 h and scheduled</h2><div class="card">'
        + render_timeline(v.events, now, since) + "</div>"
        + render_event_table(v.events, now, since)
        + '<h2>Meter: last 24 h</h2><div class="card">'
        + (f'<p id="store-error" class="degraded">The state store cannot be read ({escape(v.store_error)}): '
           'no meter history to show.</p>' if v.store_error else "")
        + (v.chart_svg or render_chart(v.chart, t0, t1))
        + '<p class="legend muted"><span><i class="sw" style="background:#1f6fd1"></i>meter value</span>'
          '<span><i class="sw" style="background:#f3d9d7"></i>no value (meter silent or gateway down)</span>'
          '<span><i class="sw" style="background:#3aa35b"></i>delivered to the VTN</span>'
          '<span><i class="sw" style="background:#f29c38"></i>queued, not yet delivered</span></p></div>'
        + writes
        + '<p class="muted">Read-only. Also: <a href="/metrics">/metrics</a> (Prometheus), '
          '<a href="/healthz">/healthz</a> (JSON).</p></body></html>')
