"""oadrUpdateReport rendered by us, signed by openleadr: the one place that works around
openleadr 0.5.36's report template (``openleadr/templates/oadrUpdateReport.xml``), which

* cannot render ``oadrPayloadResourceStatus`` (TELEMETRY_STATUS): only ``ei:payloadFloat``;
* has no field for ``ei:eiReportID`` (``objects.Report`` has none): it always sends it empty;
* drops the report's ``xcal:duration``.

Our template is registered in openleadr's own Jinja environment (``openleadr.messaging.TEMPLATES``)
under a name openleadr does not use, so ``client._create_message`` renders, signs (XML signature,
ReplayProtect) and wraps it exactly like openleadr's own messages. Pinned by
tests/test_reports_service.py (XSD validation of both payload kinds, and the template name).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Optional

from jinja2 import ChoiceLoader, DictLoader
from openleadr import messaging

TEMPLATE = "adrgwUpdateReport"

_XML = """<oadr:oadrSignedObject xmlns:oadr="http://openadr.org/oadr-2.0b/2012/07" oadr:Id="oadrSignedObject">
<oadr:oadrUpdateReport ei:schemaVersion="2.0b" xmlns:ei="http://docs.oasis-open.org/ns/energyinterop/201110" \
xmlns:pyld="http://docs.oasis-open.org/ns/energyinterop/201110/payloads" \
xmlns:xcal="urn:ietf:params:xml:ns:icalendar-2.0" xmlns:strm="urn:ietf:params:xml:ns:icalendar-2.0:stream">
<pyld:requestID>{{ request_id|e }}</pyld:requestID>
{% for report in reports %}
<oadr:oadrReport>
<xcal:dtstart><xcal:date-time>{{ report.dtstart|datetimeformat }}</xcal:date-time></xcal:dtstart>
<xcal:duration><xcal:duration>{{ report.duration|adrgw_duration }}</xcal:duration></xcal:duration>
<strm:intervals>
{% for i in report.intervals %}
<ei:interval>
<xcal:dtstart><xcal:date-time>{{ i.dtstart|datetimeformat }}</xcal:date-time></xcal:dtstart>
<xcal:duration><xcal:duration>{{ i.duration|adrgw_duration }}</xcal:duration></xcal:duration>
<oadr:oadrReportPayload>
<ei:rID>{{ i.r_id|e }}</ei:rID>
{% if i.status is not none %}
<oadr:oadrPayloadResourceStatus>
<oadr:oadrOnline>{{ i.status.online|booleanformat }}</oadr:oadrOnline>
<oadr:oadrManualOverride>{{ i.status.manual_override|booleanformat }}</oadr:oadrManualOverride>
{% if i.status.level_offset is not none %}
<oadr:oadrLoadControlState><oadr:oadrLevelOffset>
<oadr:oadrCurrent>{{ i.status.level_offset }}</oadr:oadrCurrent><oadr:oadrNormal>0</oadr:oadrNormal>
</oadr:oadrLevelOffset></oadr:oadrLoadControlState>
{% endif %}
</oadr:oadrPayloadResourceStatus>
{% else %}
<ei:payloadFloat><ei:value>{{ i.value }}</ei:value></ei:payloadFloat>
{% endif %}
</oadr:oadrReportPayload>
</ei:interval>
{% endfor %}
</strm:intervals>
<ei:eiReportID>{{ report.report_id|e }}</ei:eiReportID>
<ei:reportRequestID>{{ report.report_request_id|e }}</ei:reportRequestID>
<ei:reportSpecifierID>{{ report.report_specifier_id|e }}</ei:reportSpecifierID>
<ei:reportName>{{ report.report_name|e }}</ei:reportName>
<ei:createdDateTime>{{ report.created|datetimeformat }}</ei:createdDateTime>
</oadr:oadrReport>
{% endfor %}
<ei:venID>{{ ven_id|e }}</ei:venID>
</oadr:oadrUpdateReport>
</oadr:oadrSignedObject>"""



def duration_text(value: timedelta) -> str:
    """An xcal duration with fractions of a second kept and zero as PT0S (openleadr's
    ``timedeltaformat`` drops fractions, PT1.5S -> PT1S, and renders zero as an invalid "P")."""
    total = value.total_seconds()
    days, rest = divmod(int(total // 1), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    fraction = round(total - int(total // 1), 6)
    text = "P" + (f"{days}D" if days else "") + "T"
    text += (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or fraction or text.endswith("T"):
        text += f"{seconds + fraction:g}S" if fraction else f"{seconds}S"
    return text[:-1] if text.endswith("T") else text


messaging.TEMPLATES.loader = ChoiceLoader([DictLoader({f"{TEMPLATE}.xml": _XML}), messaging.TEMPLATES.loader])
messaging.TEMPLATES.filters["adrgw_duration"] = duration_text


@dataclass(frozen=True)
class ResourceStatus:
    """oadrPayloadResourceStatus: online, manual override, and (where a level applies) the
    oadrLoadControlState level offset: the current event level, normal 0."""

    online: bool
    manual_override: bool
    level_offset: Optional[float] = None


@dataclass(frozen=True)
class OutInterval:
    dtstart: datetime
    duration: timedelta
    r_id: str
    value: Optional[float] = None
    status: Optional[ResourceStatus] = None


@dataclass
class OutReport:
    report_id: str
    report_request_id: str
    report_specifier_id: str
    report_name: str
    dtstart: datetime
    duration: timedelta
    created: datetime
    intervals: list[OutInterval] = field(default_factory=list)


def update_report(create_message: Callable[..., str], ven_id: str, request_id: str,
                  reports: list[OutReport]) -> str:
    """The whole oadrPayload (signed when the client signs) for one oadrUpdateReport."""
    return create_message(TEMPLATE, ven_id=ven_id, request_id=request_id, reports=reports)

