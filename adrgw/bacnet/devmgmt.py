"""Device management rules (ASHRAE 135 clauses 16.1, 16.4, 16.7, 16.8) as pure logic: no I/O, and no
clock read here (the callers pass the time in).

The BACnet side (``conformance.GatewayApplication``) decodes requests, passes the current monotonic
time in, and turns the exceptions below into BACnet answers. Keeping the rules here makes the
password check, the duration handling and the DeviceCommunicationControl state machine testable
without a network, and keeps the protocol glue free of decisions.

DeviceCommunicationControl (16.1):
* ``enable``: everything works.
* ``disable``: the device answers nothing but DeviceCommunicationControl and ReinitializeDevice, and
  initiates nothing (no I-Am, no COV notifications, no meter reads, no write-through).
* ``disableInitiation``: the device answers every request as usual but initiates nothing except the
  I-Am that answers a Who-Is: no COV notifications, no meter reads, no write-through.
* A duration (minutes, 1..65535) makes a disable end by itself; without one (or 0) it lasts until an
  ``enable`` or a restart (the state is deliberately not persisted: a restart enables, 16.1.3.1).

TimeSynchronization (16.7) and UTCTimeSynchronization (16.8): ``DeviceClock`` is the device's clock,
the host's clock plus the offset the last synchronization set; only Local_Date / Local_Time (and the
Daylight_Savings_Status of that time) follow it. Like the DCC state, the offset is not persisted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from enum import Enum
from typing import Optional

# ASHRAE 135 16.1.1.1.1: Time Duration is Unsigned16 minutes.
MAX_DURATION_MINUTES = 65535
# ASHRAE 135 16.1.1.1.3 / 16.4.1.1.2: the password is a CharacterString of at most 20 characters.
MAX_PASSWORD_LENGTH = 20


class DccState(str, Enum):
    """The three states of DeviceCommunicationControl, named as bacpypes3 encodes them."""

    ENABLE = "enable"
    DISABLE = "disable"
    DISABLE_INITIATION = "disableInitiation"


class ReinitState(str, Enum):
    """BACnetReinitializedStateOfDevice values the gateway executes (the others are refused)."""

    COLDSTART = "coldstart"
    WARMSTART = "warmstart"


class PasswordFailure(Exception):
    """The request's password is missing or wrong: Error(security, password-failure)."""


class DurationOutOfRange(Exception):
    """Time Duration above 65535 minutes: Reject(parameter-out-of-range)."""


class NotSupported(Exception):
    """A ReinitializeDevice state the gateway does not execute (backup/restore, activate-changes):
    Error(services, optional-functionality-not-supported)."""


def parse_dcc_state(text: str) -> DccState:
    """bacpypes3 spells the enumeration ``disable-initiation`` in text and ``disableInitiation`` as
    an attribute; both mean the same state."""
    value = str(text)
    return DccState("disableInitiation" if value == "disable-initiation" else value)


def password_ok(configured: str, given: Optional[str]) -> bool:
    """ASHRAE 135 16.1.3.1 / 16.4.3.1: a device without a password accepts any (or none); one with a
    password needs exactly that string. An over-long given password can never match."""
    if not configured:
        return True
    return given is not None and len(given) <= MAX_PASSWORD_LENGTH and given == configured


def duration_seconds(minutes: Optional[int]) -> Optional[float]:
    """Seconds a disable lasts; None for "until enabled". 0 is treated as absent (indefinite), as
    the reference stacks do; above 65535 does not fit the Unsigned16 the standard defines."""
    if minutes is None or minutes == 0:
        return None
    if minutes < 0 or minutes > MAX_DURATION_MINUTES:
        raise DurationOutOfRange(f"time duration {minutes} min is out of range 1..{MAX_DURATION_MINUTES}")
    return minutes * 60.0


@dataclass
class CommunicationControl:
    """The DCC state machine. Every method takes ``now`` (monotonic seconds) so tests drive time."""

    password: str = ""
    state: DccState = DccState.ENABLE
    until: Optional[float] = None  # monotonic time the disable ends; None: until enabled

    def request(self, enable_disable: str, minutes: Optional[int], password: Optional[str], now: float) -> DccState:
        """Apply a DeviceCommunicationControl request; the new state, or PasswordFailure /
        DurationOutOfRange (and the state unchanged). The password is checked first (16.1.3.1)."""
        if not password_ok(self.password, password):
            raise PasswordFailure("wrong or missing password")
        wanted = parse_dcc_state(enable_disable)
        seconds = duration_seconds(minutes) if wanted is not DccState.ENABLE else None
        self.state = wanted
        self.until = None if seconds is None else now + seconds
        return self.state

    def current(self, now: float) -> DccState:
        """The state at ``now``; a disable whose duration has passed has become ``enable``."""
        if self.until is not None and now >= self.until:
            self.state, self.until = DccState.ENABLE, None
        return self.state

    def answers(self, confirmed_service: Optional[int], now: float) -> bool:
        """Whether a request is processed at all. ``confirmed_service`` is the confirmed service
        choice, None for an unconfirmed request. While disabled only DeviceCommunicationControl (17)
        and ReinitializeDevice (20) are."""
        if self.current(now) is not DccState.DISABLE:
            return True
        return confirmed_service in (17, 20)

    def may_initiate(self, now: float) -> bool:
        """Whether the device may start requests of its own (reads, writes, COV notifications)."""
        return self.current(now) is DccState.ENABLE

    def remaining(self, now: float) -> Optional[float]:
        state = self.current(now)
        if state is DccState.ENABLE or self.until is None:
            return None
        return max(0.0, self.until - now)


def reinitialize_state(state: str, configured_password: str, given: Optional[str]) -> ReinitState:
    """Check a ReinitializeDevice request: the password first (16.4.3.1), then the state.
    coldstart and warmstart restart the gateway; backup/restore and activate-changes are not
    implemented."""
    if not password_ok(configured_password, given):
        raise PasswordFailure("wrong or missing password")
    try:
        return ReinitState(str(state))
    except ValueError:
        raise NotSupported(f"reinitialized state {state!r} is not supported") from None


# -- the device's clock (ASHRAE 135 16.7 TimeSynchronization, 16.8 UTCTimeSynchronization) ----------


class HostZone(tzinfo):
    """The host's time zone (``TZ`` or /etc/localtime) with its daylight-saving rules, through the C
    library, as the Python documentation's ``LocalTimezone`` example does. ``datetime.astimezone()``
    gives only a fixed offset, which cannot say whether daylight saving is in effect at some other
    instant; Daylight_Savings_Status and the UTC_Offset of standard time need that."""

    def utcoffset(self, dt: Optional[datetime]) -> timedelta:
        return self._standard() + self.dst(dt)

    def dst(self, dt: Optional[datetime]) -> timedelta:
        if dt is None or not self._isdst(dt):
            return timedelta(0)
        return timedelta(seconds=time.timezone - time.altzone)

    def tzname(self, dt: Optional[datetime]) -> str:
        return time.tzname[1 if dt is not None and self._isdst(dt) else 0]

    def fromutc(self, dt: datetime) -> datetime:
        stamp = (dt.replace(tzinfo=None) - _EPOCH) // timedelta(seconds=1)
        local = time.localtime(stamp)
        return datetime(*local[:6], microsecond=dt.microsecond, tzinfo=self,
                        fold=int(local[:6] == time.localtime(stamp - self._dst_shift())[:6]))

    @staticmethod
    def _standard() -> timedelta:
        return timedelta(seconds=-time.timezone)

    @staticmethod
    def _dst_shift() -> int:
        return time.timezone - time.altzone if time.daylight else 0

    @staticmethod
    def _isdst(dt: datetime) -> bool:
        stamp = time.mktime((dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.weekday(), 0, -1))
        return time.localtime(stamp).tm_isdst > 0


_EPOCH = datetime(1970, 1, 1)


@dataclass
class DeviceClock:
    """What the device reports as Local_Date / Local_Time: the host's clock plus the offset the last
    TimeSynchronization or UTCTimeSynchronization set (DM-TS-B, DM-UTC-B). Nothing else follows it:
    the operating system's clock is never set (the host's time service owns it and the gateway runs
    unprivileged), and the event schedule and telemetry stay on the host's clock, which is what the
    VTN's times are compared with. Every method takes the host's current time, so tests drive time.

    The offset is kept in memory only: a restart starts again from the host's clock, as a device
    whose battery-backed clock a time synchronization does not write (the host's clock is that
    clock here). BAS workstations synchronize periodically, so the next synchronization restores it.
    """

    zone: tzinfo = field(default_factory=HostZone)  # the device's time zone: the host's
    offset: float = 0.0  # seconds the device's clock is ahead of the host's

    def now(self, host: datetime) -> datetime:
        """The device's current time (aware, in its time zone) when the host's clock reads ``host``."""
        return (host + timedelta(seconds=self.offset)).astimezone(self.zone)

    def utc_offset(self, host: datetime) -> int:
        """UTC_Offset (ASHRAE 135 12.11.32): minutes between local *standard* time and UTC, positive
        west of Greenwich: the minutes to add to local standard time to get UTC (-60 for UTC+1,
        also in summer; daylight saving is Daylight_Savings_Status)."""
        local = self.now(host)
        standard = (local.utcoffset() or timedelta(0)) - (local.dst() or timedelta(0))
        return -int(standard.total_seconds() // 60)

    def daylight_savings(self, host: datetime) -> bool:
        """Daylight_Savings_Status: whether daylight saving time is in effect at the device's time."""
        return bool(self.now(host).dst())

    def local_to_utc(self, local: datetime) -> datetime:
        """A TimeSynchronization's local date and time as UTC: plus UTC_Offset, minus the
        daylight-saving shift when it is in effect at that local time (so the time told is the time
        read back, also across a daylight-saving change between now and then)."""
        return local.replace(tzinfo=self.zone).astimezone(timezone.utc)

    def synchronize(self, told_utc: datetime, host: datetime) -> float:
        """Follow the time told from now on; the new offset in seconds (device ahead of host)."""
        self.offset = (told_utc - host).total_seconds()
        return self.offset
