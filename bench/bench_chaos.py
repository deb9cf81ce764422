"""Chaos: random faults while events run, counted from the outside (the VTN's and a BACnet client's side).

The gateway runs as a separate process (as under systemd) against a real openleadr VTN behind a fault
proxy and a bacpypes3 router + meter, all on loopback. Faults, drawn at random: VTN flaps (down 2-6 s),
VTN stalls (every reply held 2 s, longer than the gateway's request timeout), meter drops (silent
2-5 s), disk full spells (the state directory is a small tmpfs; root only), kill -9 (restart after
1 s), wall-clock steps (libfaketime; forward 20 s, back to true time 5 s later; in the smoke run 5 s
for 2.5 s). Meanwhile the VTN runs one short event after another (two 3 s intervals, random levels).

Printed: samples taken, stored, not stored (disk full, counted by the gateway), delivered, duplicated,
owed at stop (stored, but their report was not yet due when the gateway got its final SIGTERM, or was
due less than the request timeout before it, so still in flight: the gateway rightly keeps them for its
next start, they are not lost), lost (stored, due earlier and never delivered), invented, and level
errors (reads of ADR-Event-Level that disagree with the event the gateway had
acknowledged, more than 1 s after a boundary, while the process is up and its clock is true).

Run:  .venv/bin/python bench/bench_chaos.py --minutes 30     (the figures in docs/benchmarks.md)
      .venv/bin/python bench/bench_chaos.py --quick          (smoke run for the test suite, ~20 s: each
                                                              kind of fault once, short spells, then stop)
Writes bench/results/chaos.json (chaos-quick.json).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, setup, udp, write_result  # noqa: E402

setup()

from adrgw.ops import logsetup  # noqa: E402
from adrgw.demo.embedded import DemoVtn, SimulatedMeter, free_port  # noqa: E402
from tests.support.faultproxy import FaultProxy  # noqa: E402

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
ADDING = re.compile(r"Adding (\S+), (\S+) to report")
UNSTORED = re.compile(r"could not store the sample for (\S+),")
EVENT_INTERVAL = 3.0
# The gateway's [meter] interval. The demo VTN requests TELEMETRY_USAGE at this granularity and report
# back duration, so the sample of instant t is due in the report sent at t + REPORT_EVERY.
REPORT_EVERY = 1.0
# The gateway's [ven] request_timeout: a report sent less than this before the final SIGTERM may still
# be waiting for its acknowledgement; the gateway then abandons the exchange and keeps its samples.
REQUEST_TIMEOUT = 1.0
CLOCK_STEP = 20.0
_MOUNTED: list[Path] = []


def clock_value(t: float) -> float:
    """The meter's value at true time t (distinct per second): a reading filed elsewhere shows."""
    return float(int(t) % 100000)


class GatewayProcess:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir, self.env = workdir, env
        self.proc: Optional[asyncio.subprocess.Process] = None
        self.lines: list[str] = []
        # True time each sample's `Adding` line arrived (the gateway's own clock may be stepped).
        self.added_at: dict[datetime, float] = {}
        self.starts = 0
        self._reader: Optional[asyncio.Task[None]] = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bacnet_server_ven.py"), cwd=str(self.workdir), env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        self.starts += 1
        self._reader = asyncio.create_task(self._read(self.proc))

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            added = ADDING.search(line)
            if added:
                self.added_at.setdefault(datetime.fromisoformat(added.group(1)), time.time())

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill9(self) -> None:
        if self.up:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
            if self._reader is not None:
                await asyncio.wait_for(self._reader, 5)

    async def stop(self) -> int:
        if not self.up:
            return -1
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), 15)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)
        return code


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                continue
    return filler


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    duration = 0.0 if args.quick else args.minutes * 60  # the smoke run: every kind once, then stop
    rng = random.Random(args.seed)
    event_every = 8.0 if args.quick else 12.0
    # Shorter fault spells in the smoke run; a stall still outlasts the request timeout (>= 1.2 s).
    scale = 0.4 if args.quick else 1.0
    clock_hold = 2.5 if args.quick else 5.0  # the preload re-reads the offset file each second
    # A stepped clock files samples ahead, and their report is due only once true time gets there: the drain
    # waits for it. The smoke run steps 5 s.
    clock_step = 5.0 if args.quick else CLOCK_STEP
    logsetup.setup("WARNING")
    work = Path(tempfile.mkdtemp(prefix="adrgw-chaos-"))
    root = os.geteuid() == 0
    faketime = LIBFAKETIME.exists()
    state = work / "disk"
    state.mkdir()
    mounted = False
    if root:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(state)], check=True)
        _MOUNTED.append(state)
        mounted = True

    vtn = DemoVtn(port=free_port(), poll_freq=1.0)
    meter = SimulatedMeter(port=udp())
    meter.value_fn = clock_value
    await vtn.start()
    await meter.start()
    logging.getLogger("openleadr").setLevel(logging.WARNING)
    proxy = FaultProxy(f"http://127.0.0.1:{vtn.port}")
    stall = False
    proxy.delay = lambda req, reply, body: 2.0 if stall else 0.0
    await proxy.start()
    gw_port = udp(meter.port)
    (work / "config.ini").write_text(f"""
[ven]
ven_name = chaos-ven
vtn_url = {proxy.url()}
request_timeout = {REQUEST_TIMEOUT:g}
retry_max = 2
[bacnet]
address = 127.0.0.1/8
port = {gw_port}
routes = 12345=127.0.0.1:{meter.port}
[meter]
interval = {REPORT_EVERY:g}
timeout = 0.5
[state]
directory = {state / 'state'}
""")
    offset_file = work / "faketime"
    offset_file.write_text("+0\n")
    env = dict(os.environ, HOME=str(work), PYTHONUNBUFFERED="1")
    if faketime:
        env.update(LD_PRELOAD=str(LIBFAKETIME), FAKETIME_TIMESTAMP_FILE=str(offset_file),
                   FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_CACHE_DURATION="1")
    gateway = GatewayProcess(work, env)
    await gateway.start()

    from bacpypes3.app import Application
    from bacpypes3.basetypes import PropertyIdentifier
    from bacpypes3.local.device import DeviceObject
    from bacpypes3.local.networkport import NetworkPortObject
    from bacpypes3.pdu import Address
    from bacpypes3.primitivedata import ObjectIdentifier

    client = Application.from_object_list([
        DeviceObject(objectIdentifier=("device", 3999), objectName="chaos-client", vendorIdentifier=999),
        NetworkPortObject(f"127.0.0.1/8:{udp(meter.port, gw_port)}", objectIdentifier=("network-port", 1),
                          objectName="NP1"),
    ])

    events: list[tuple[str, float, list[float]]] = []  # (event_id, start, levels), true time
    clock_off: list[tuple[float, float]] = []  # (from, to) true-time spans when the gateway's clock was off
    down: list[tuple[float, float]] = []
    faults: collections.Counter[str] = collections.Counter()
    level_reads: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def read_levels() -> None:
        address, obj = Address(f"127.0.0.1:{gw_port}"), ObjectIdentifier("analog-value,1")
        while not stop.is_set():
            t0 = time.time()
            try:
                value = await asyncio.wait_for(client.read_property(address, obj, PropertyIdentifier("present-value")),
                                               0.5)
                level_reads.append(((t0 + time.time()) / 2, float(value)))
            except Exception:  # noqa: BLE001 - the process may be down: not a level error
                pass
            await asyncio.sleep(0.25)

    async def run_events() -> None:
        while not stop.is_set():
            ven_id = vtn.ven_ids.get("chaos-ven")
            if ven_id and vtn.server is not None:
                start = time.time() + 4.0
                levels = [float(rng.randint(1, 3)), float(rng.randint(1, 3))]
                event_id = vtn.add_event(ven_id, levels, datetime.fromtimestamp(start, timezone.utc),
                                         timedelta(seconds=EVENT_INTERVAL))
                events.append((str(event_id), start, levels))
            await asyncio.sleep(event_every)

    async def fault(kind: str) -> None:
        nonlocal stall
        faults[kind] += 1
        if kind == "vtn-flap":
            await vtn.stop()
            await asyncio.sleep(rng.uniform(2, 6) * scale)
            await vtn.start()
            logging.getLogger("openleadr").setLevel(logging.WARNING)
        elif kind == "vtn-stall":
            stall = True
            await asyncio.sleep(rng.uniform(3, 6) * scale)
            stall = False
        elif kind == "meter-drop":
            meter.online = False
            await asyncio.sleep(rng.uniform(2, 5) * scale)
            meter.online = True
        elif kind == "disk-full":
            filler = await asyncio.to_thread(fill, state)
            await asyncio.sleep(rng.uniform(3, 6) * scale)
            filler.unlink()
        elif kind == "kill-9":
            began = time.time()
            await gateway.kill9()
            await asyncio.sleep(1.0)
            await gateway.start()
            down.append((began, time.time() + 3.0))  # +3 s: the device is back about 2 s after exec
        elif kind == "clock-step":
            began = time.time()
            offset_file.write_text(f"+{clock_step:g}\n")
            await asyncio.sleep(clock_hold)
            offset_file.write_text("+0\n")
            clock_off.append((began, time.time() + 2.5))  # +2.5 s: the preload re-reads the file each second

    kinds = ["vtn-flap", "vtn-stall", "meter-drop", "kill-9"] + (["disk-full"] if root else []) + \
        (["clock-step"] if faketime else [])
    began = time.time()
    if args.quick:  # registration: no longer than it takes (the full run waits 3 s)
        while "chaos-ven" not in vtn.ven_ids and time.time() - began < 20:
            await asyncio.sleep(0.1)
    else:
        await asyncio.sleep(3.0)  # registration
    readers = [asyncio.create_task(read_levels()), asyncio.create_task(run_events())]
    order = list(kinds)
    rng.shuffle(order)
    while order or time.time() - began < duration:
        kind = order.pop() if order else rng.choice(kinds)  # every kind once first, then at random
        await fault(kind)
        await asyncio.sleep(rng.uniform(0.2, 0.6) if args.quick else rng.uniform(5.0, 40.0))
    ended = time.time()
    # Drain: everything the gateway stored must reach the VTN.
    drain_until = time.time() + (15 if args.quick else 90)

    def stored() -> set[datetime]:
        return {datetime.fromisoformat(m.group(1)) for line in gateway.lines for m in [ADDING.search(line)] if m}

    def drained() -> bool:
        delivered = {t for t, _ in vtn.record.readings}
        if args.quick:
            # The smoke run waits for what was stored until the faults ended, and for one sample stored
            # later, by true time (a stepped clock files samples ahead): the newest sample is nearly always
            # on its way, which kept it waiting out its whole drain time.
            added = gateway.added_at
            return ({t for t in stored() if added.get(t, 0.0) <= ended + 1} <= delivered
                    and any(added.get(t, 0.0) > ended + 2 for t in delivered))
        return stored() <= delivered and any(t.timestamp() > ended + 2 for t in delivered)

    while time.time() < drain_until and not drained():
        await asyncio.sleep(0.5)
    stop.set()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    final_stop = time.time()  # the final SIGTERM
    code = await gateway.stop()
    client.close()
    await proxy.stop()
    await vtn.stop()
    await meter.stop()
    if mounted:
        subprocess.run(["umount", "-l", str(state)], check=False)

    (work / "gateway.log").write_text("\n".join(gateway.lines) + "\n")

    # -- the figures, from the outside -------------------------------------------------------------
    taken_stored = stored()
    unstored = {datetime.fromisoformat(m.group(1)) for line in gateway.lines for m in [UNSTORED.search(line)] if m}
    copies = collections.Counter(t for t, _ in vtn.record.readings)
    values = {t: v for t, v in vtn.record.readings}
    offsets = (0.0, clock_step)
    invented = [t for t, v in values.items() if all(v != clock_value(t.timestamp() - o) for o in offsets)]
    undelivered = taken_stored - set(copies)
    # Owed at stop, not lost: the report carrying them was not due yet, or still within its request timeout
    # (judged on true time: when the sample's line arrived, at most [meter] timeout after its instant).
    owed_at_stop = sorted(t for t in undelivered
                          if gateway.added_at.get(t, 0.0) + REPORT_EVERY + REQUEST_TIMEOUT > final_stop)
    lost = sorted(undelivered - set(owed_at_stop))
    acknowledged = {event_id for event_id, _ in vtn.record.opts}

    def expected(t: float) -> Optional[float]:
        """The level at true time t, or None when t is not judged (near a boundary, process down, clock off)."""
        if any(a <= t <= b for a, b in down + clock_off):
            return None
        for event_id, start, levels in events:
            end = start + EVENT_INTERVAL * len(levels)
            boundaries = [start + EVENT_INTERVAL * k for k in range(len(levels) + 1)]
            if any(0 <= t - b < 1.0 or 0 <= b - t < 0.2 for b in boundaries):
                return None
            if start <= t < end:
                if event_id not in acknowledged:
                    return None  # the gateway never had it (the VTN was down or stalled all along)
                return levels[int((t - start) // EVENT_INTERVAL)]
        return 0.0

    judged = [(t, v, expected(t)) for t, v in level_reads]
    judged = [(t, v, e) for t, v, e in judged if e is not None]
    level_errors = [(t, v, e) for t, v, e in judged if v != e]
    result = {
        "machine": machine(), "seconds": round(ended - began, 1), "seed": args.seed, "faults": dict(faults),
        "samples_taken": len(taken_stored) + len(unstored), "stored": len(taken_stored),
        "not_stored_disk_full": len(unstored), "delivered": len(copies),
        "duplicated": sum(n - 1 for n in copies.values()), "owed_at_stop": len(owed_at_stop),
        "lost": len(lost), "invented": len(invented),
        "level_reads_judged": len(judged), "level_errors": len(level_errors),
        "events": len(events), "events_acknowledged": len([e for e in events if e[0] in acknowledged]),
        "gateway_starts": gateway.starts, "exit_code": code,
        "tracebacks": sum("Traceback" in line for line in gateway.lines),
    }
    print(f"chaos benchmark, {machine()}")
    print(f"ran {result['seconds']} s, faults: " + ", ".join(f"{k} x{n}" for k, n in sorted(faults.items())))
    if not root:
        print("(not root: no disk-full spells)")
    if not faketime:
        print(f"(no {LIBFAKETIME}: no clock steps)")
    for key in ("samples_taken", "stored", "not_stored_disk_full", "delivered", "duplicated", "owed_at_stop",
                "lost", "invented", "level_reads_judged", "level_errors", "events", "events_acknowledged", "gateway_starts",
                "exit_code", "tracebacks"):
        print(f"{key:>22}: {result[key]}")
    if owed_at_stop:
        print("owed at stop (report not yet due or still in flight):", ", ".join(t.isoformat() for t in owed_at_stop[:20]))
    if lost:
        print("lost instants:", ", ".join(t.isoformat() for t in lost[:20]))
    if level_errors:
        print("level errors (true time, read, expected):",
              ", ".join(f"{datetime.fromtimestamp(t, timezone.utc):%H:%M:%S.%f} {v:g}!={e:g}"
                        for t, v, e in level_errors[:20]))
    print(f"gateway log: {work / 'gateway.log'}")
    write_result("chaos", result, args.quick)


def _cleanup_mounts() -> None:
    """A run that died half-way must not leave its tmpfs mounted (only this run's)."""
    for path in _MOUNTED:
        if os.path.ismount(path):
            subprocess.run(["umount", "-l", str(path)], check=False)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    finally:
        _cleanup_mounts()
