"""OpenADR 3.1.0 on the wire: strict checks of what comes in, and bodies without nulls going out.

Our own small models instead of a generated client (docs/architecture.md, "OpenADR 3.1 client
library"): only the objects and fields this VEN uses, checked against the 3.1.0 OpenAPI schemas
(types, lengths, the objectID pattern, RFC 3339 date-times, the ISO 8601 duration pattern, the
enumerations). Anything else the VTN adds is left alone (the schemas allow extra properties). A
check failing is one ``Invalid`` naming the field, so a hostile or broken object is logged in one
line and refused, never half-applied. Outgoing bodies are built by ``compact`` so an unset field is
left out, never sent as null.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Optional

OBJECT_ID = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
DURATION = re.compile(r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?"
                      r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
OBJECT_TYPES = ("PROGRAM", "EVENT", "REPORT", "SUBSCRIPTION", "VEN", "RESOURCE")
OPERATIONS = ("CREATE", "READ", "UPDATE", "DELETE")
# User Guide: a start of 0001-01-01 means "now"; a duration of P9999Y means "for ever". The spec names
# "0001-01-01" and "0001-01-01T00:00:00"; any RFC 3339 spelling of that midnight counts too (an offset
# or a zero fraction must not turn "now" into year 1, nor a positive offset into an overflow).
NOW_START = re.compile(r"^0001-01-01([Tt ]00:00:00(\.0+)?([Zz]|[+-]\d\d:\d\d)?)?$")
FOREVER_YEARS = 9999
INT32 = (-2 ** 31, 2 ** 31 - 1)


class Invalid(ValueError):
    """An object from the VTN does not match the 3.1.0 schema (the message names the field)."""


def mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Invalid(f"{what} is not an object")
    return value


def present(obj: Mapping[str, Any], key: str) -> bool:
    """True when ``key`` holds a value (nullable fields may be null: the same as absent)."""
    return obj.get(key) is not None


def string(value: Any, what: str, low: int = 1, high: int = 128) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{what} is not a string")
    if not low <= len(value) <= high:
        raise Invalid(f"{what} has {len(value)} characters (allowed {low}..{high})")
    return value


def object_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not OBJECT_ID.match(value):
        raise Invalid(f"{what} {str(value)[:40]!r} is not an objectID")
    return value


def integer(value: Any, what: str, low: int = INT32[0], high: int = INT32[1]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{what} is not an integer")
    if not low <= value <= high:
        raise Invalid(f"{what} {value} is out of range {low}..{high}")
    return value


def boolean(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{what} is not a boolean")
    return value


def number(value: Any, what: str) -> float:
    """A JSON number (not a boolean), finite (json.loads accepts NaN and Infinity)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"{what} is not a number")
    if not math.isfinite(value):
        raise Invalid(f"{what} is not finite")
    return float(value)


def array(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(f"{what} is not an array")
    return value


def date_time(value: Any, what: str, now: Optional[datetime] = None) -> datetime:
    """RFC 3339 with an offset; the User Guide's "0001-01-01" (now) becomes ``now`` when given."""
    if not isinstance(value, str) or len(value) > 64:
        raise Invalid(f"{what} is not a date-time")
    if now is not None and NOW_START.match(value):
        return now
    if not re.match(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$", value):
        raise Invalid(f"{what} {value[:40]!r} is not an RFC 3339 date-time")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise Invalid(f"{what} {value[:40]!r} is not a valid date-time") from None
    return parsed.astimezone(timezone.utc)


def duration(value: Any, what: str) -> Optional[timedelta]:
    """ISO 8601 duration as the spec's pattern allows; None for "for ever" (P9999Y or more).

    Years and months have no fixed length: they count as 365 and 30 days (only P9999Y is used in
    practice). Negative durations are refused: nothing this VEN reads may run backwards."""
    if not isinstance(value, str) or len(value) > 64:
        raise Invalid(f"{what} is not a duration")
    m = DURATION.match(value)
    if not m:
        raise Invalid(f"{what} {value[:40]!r} is not an ISO 8601 duration")
    sign, years, months, days, unit, hours, minutes, seconds = m.groups()
    if sign:
        raise Invalid(f"{what} {value!r} is negative")
    if years and int(years) >= FOREVER_YEARS:
        return None
    total_days = int(years or 0) * 365 + int(months or 0) * 30 + int(days or 0) * (7 if unit == "W" else 1)
    try:
        return timedelta(days=total_days, hours=int(hours or 0), minutes=int(minutes or 0),
                         seconds=float(seconds or 0))
    except OverflowError:
        raise Invalid(f"{what} {value!r} is too long") from None


def iso(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, milliseconds only when there are any."""
    value = value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"


def iso_duration(seconds: float) -> str:
    """PT10S, PT0.5S, PT1000000S: the form the spec's pattern accepts (seconds as a plain decimal,
    never in exponent form, which ``:g`` gives from 1e6 s on; to the microsecond)."""
    if not seconds > 0 or not math.isfinite(seconds):
        return "PT0S"
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return f"PT{text}S"


def compact(value: Any) -> Any:
    """``value`` without None members, recursively: an unset field is left out, never sent as null."""
    if isinstance(value, Mapping):
        return {k: compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [compact(v) for v in value]
    return value


# -- the objects this VEN reads ------------------------------------------------------------------


def metadata(obj: Mapping[str, Any], what: str, kind: Optional[str] = None) -> str:
    """objectMetadata: id, createdDateTime, modificationDateTime (objectType checked when ``kind``)."""
    oid = object_id(obj.get("id"), f"{what} id")
    date_time(obj.get("createdDateTime"), f"{what} {oid} createdDateTime")
    date_time(obj.get("modificationDateTime"), f"{what} {oid} modificationDateTime")
    if kind is not None and obj.get("objectType") != kind:
        raise Invalid(f"{what} {oid} objectType {str(obj.get('objectType'))[:30]!r} is not {kind}")
    return oid


def targets(value: Any, what: str) -> tuple[str, ...]:
    """A nullable list of target strings (3.1.0: plain strings of 1..128 characters)."""
    if value is None:
        return ()
    return tuple(string(t, f"{what} target") for t in array(value, f"{what} targets"))


def program(raw: Any) -> dict[str, Any]:
    obj = mapping(raw, "program")
    oid = metadata(obj, "program", "PROGRAM")
    string(obj.get("programName"), f"program {oid} programName")
    targets(obj.get("targets"), f"program {oid}")
    return dict(obj)


def ven(raw: Any) -> dict[str, Any]:
    """A VEN object. Its objectType is not checked: the 3.1.0 schema asks for both VEN (metadata)
    and BL_VEN_REQUEST (allOf), which no object can satisfy."""
    obj = mapping(raw, "ven")
    oid = metadata(obj, "ven")
    string(obj.get("venName"), f"ven {oid} venName")
    targets(obj.get("targets"), f"ven {oid}")
    return dict(obj)


def resource(raw: Any) -> dict[str, Any]:
    """A resource object (objectType not checked, as for ``ven``)."""
    obj = mapping(raw, "resource")
    oid = metadata(obj, "resource")
    string(obj.get("resourceName"), f"resource {oid} resourceName")
    object_id(obj.get("venID"), f"resource {oid} venID")
    targets(obj.get("targets"), f"resource {oid}")
    return dict(obj)


def created(raw: Any, what: str) -> str:
    """The id of an object the VTN answered a POST/PUT with (report, subscription)."""
    return metadata(mapping(raw, what), what)


def interval_period(value: Any, what: str) -> Mapping[str, Any]:
    period = mapping(value, what)
    if present(period, "start"):
        date_time(period["start"], f"{what} start", now=datetime.now(timezone.utc))
    for key in ("duration", "randomizeStart"):
        if present(period, key):
            duration(period[key], f"{what} {key}")
    return period


def values_map(value: Any, what: str) -> Mapping[str, Any]:
    vm = mapping(value, what)
    string(vm.get("type"), f"{what} type")
    for n, item in enumerate(array(vm.get("values"), f"{what} values")):
        if isinstance(item, Mapping):
            number(item.get("x"), f"{what} value {n} x")
            number(item.get("y"), f"{what} value {n} y")
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            number(item, f"{what} value {n}")
        elif not isinstance(item, (str, bool)):
            raise Invalid(f"{what} value {n} is not a number, string, boolean or point")
    return vm


def report_descriptor(value: Any, what: str) -> Mapping[str, Any]:
    rd = mapping(value, what)
    string(rd.get("payloadType"), f"{what} payloadType")
    for key in ("readingType", "units"):
        if present(rd, key):
            string(rd[key], f"{what} {key}")
    targets(rd.get("targets"), what)
    for key in ("aggregate", "historical"):
        if key in rd:
            boolean(rd[key], f"{what} {key}")
    for key in ("startInterval", "numIntervals", "frequency", "repeat"):
        if key in rd:
            integer(rd[key], f"{what} {key}")
    if "reportIntervals" in rd and rd["reportIntervals"] not in ("INTERVALS", "SUB_INTERVALS", "OPEN_INTERVALS"):
        raise Invalid(f"{what} reportIntervals {str(rd['reportIntervals'])[:30]!r} is not INTERVALS, "
                      "SUB_INTERVALS or OPEN_INTERVALS")
    return rd


def event(raw: Any) -> dict[str, Any]:
    """An event, every field this VEN reads checked against the 3.1.0 schema; Invalid otherwise."""
    obj = mapping(raw, "event")
    oid = metadata(obj, "event", "EVENT")
    what = f"event {oid}"
    object_id(obj.get("programID"), f"{what} programID")
    if present(obj, "eventName"):
        string(obj["eventName"], f"{what} eventName", 0, 10000)
    if present(obj, "duration"):
        duration(obj["duration"], f"{what} duration")
    if present(obj, "priority"):
        integer(obj["priority"], f"{what} priority", 0)
    targets(obj.get("targets"), what)
    for n, rd in enumerate(array(obj.get("reportDescriptors") or [], f"{what} reportDescriptors")):
        report_descriptor(rd, f"{what} reportDescriptor {n}")
    for n, pd in enumerate(array(obj.get("payloadDescriptors") or [], f"{what} payloadDescriptors")):
        descriptor = mapping(pd, f"{what} payloadDescriptor {n}")
        string(descriptor.get("payloadType"), f"{what} payloadDescriptor {n} payloadType")
    if present(obj, "intervalPeriod"):
        interval_period(obj["intervalPeriod"], f"{what} intervalPeriod")
    for n, item in enumerate(array(obj.get("intervals") or [], f"{what} intervals")):
        interval = mapping(item, f"{what} interval {n}")
        integer(interval.get("id"), f"{what} interval {n} id")
        if present(interval, "intervalPeriod"):
            interval_period(interval["intervalPeriod"], f"{what} interval {n} intervalPeriod")
        for m, payload in enumerate(array(interval.get("payloads"), f"{what} interval {n} payloads")):
            values_map(payload, f"{what} interval {n} payload {m}")
    return dict(obj)


def notification(raw: Any) -> tuple[str, str, str]:
    """(objectType, operation, object id) of a notification (MQTT or webhook); Invalid otherwise.

    Only these are used: the object itself is fetched again from the VTN (a notification, retained
    or forged, never moves a point by its content)."""
    obj = mapping(raw, "notification")
    kind = obj.get("objectType")
    if kind not in OBJECT_TYPES:
        raise Invalid(f"notification objectType {str(kind)[:30]!r} is not one of {', '.join(OBJECT_TYPES)}")
    operation = obj.get("operation")
    if operation not in OPERATIONS:
        raise Invalid(f"notification operation {str(operation)[:30]!r} is not one of {', '.join(OPERATIONS)}")
    inner = mapping(obj.get("object"), "notification object")
    return str(kind), str(operation), object_id(inner.get("id"), "notification object id")


def token_response(raw: Any) -> tuple[str, Optional[float]]:
    """(access_token, expires_in seconds or None) of a clientCredentialResponse."""
    obj = mapping(raw, "token response")
    token = string(obj.get("access_token"), "token response access_token", 1, 4096)
    if str(obj.get("token_type", "")).lower() != "bearer":
        raise Invalid(f"token response token_type {str(obj.get('token_type'))[:30]!r} is not Bearer")
    expires = obj.get("expires_in")
    if expires is None:
        return token, None
    return token, float(integer(expires, "token response expires_in", 0))


def notifiers(raw: Any) -> Optional[Mapping[str, Any]]:
    """The MQTT binding of a notifiersResponse (None: the VTN offers webhooks only)."""
    obj = mapping(raw, "notifiers response")
    boolean(obj.get("WEBHOOK"), "notifiers response WEBHOOK")
    if not present(obj, "MQTT"):
        return None
    mqtt = mapping(obj["MQTT"], "notifiers MQTT")
    for n, uri in enumerate(array(mqtt.get("URIS"), "notifiers MQTT URIS")):
        string(uri, f"notifiers MQTT URI {n}", 1, 8000)
    if mqtt.get("serialization") != "JSON":
        raise Invalid("notifiers MQTT serialization is not JSON")
    method = mapping(mqtt.get("authentication"), "notifiers MQTT authentication").get("method")
    if method not in ("ANONYMOUS", "OAUTH2_BEARER_TOKEN", "CERTIFICATE"):
        raise Invalid(f"notifiers MQTT authentication method {str(method)[:30]!r} is not known")
    return mqtt


def topics(raw: Any) -> list[str]:
    """The topics of a notifierTopicsResponse to subscribe: ALL when offered, else every operation's."""
    obj = mapping(mapping(raw, "topics response").get("topics"), "topics response topics")
    if present(obj, "ALL"):
        return [string(obj["ALL"], "topic ALL", 1, 65535)]
    return [string(obj[op], f"topic {op}", 1, 65535) for op in ("CREATE", "UPDATE", "DELETE") if present(obj, op)]


__all__ = ["Invalid", "compact", "date_time", "duration", "event", "iso", "iso_duration", "notification",
           "notifiers", "program", "resource", "token_response", "topics", "ven"]
