"""Peers for the LAN test, run inside their own network namespace: a BACnet router (IP side on
HOST:47808, like a real one) to virtual network 12345 with the meter at MAC 2, and an openleadr VTN on
HOST:8080. Prints READY, then one 'READING <iso> <value>' line per value the VTN receives."""

import asyncio
import os
import sys
import tempfile

os.environ["HOME"] = tempfile.mkdtemp(prefix="adrgw-lan-peer-")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from adrgw.ops import logsetup  # noqa: E402
from adrgw.demo.embedded import DemoVtn, SimulatedMeter  # noqa: E402


async def main(host: str, prefix: int) -> None:
    logsetup.setup("WARNING")
    meter = SimulatedMeter(host=host, port=47808, prefix=prefix)
    meter.set_value(33.25)
    vtn = DemoVtn(port=8080, poll_freq=1.0, host=host)
    await meter.start()
    await vtn.start()
    print("READY", flush=True)
    sent = 0
    try:
        while True:
            for stamp, value in vtn.record.readings[sent:]:
                print(f"READING {stamp.isoformat()} {value}", flush=True)
            sent = len(vtn.record.readings)
            await asyncio.sleep(0.1)
    finally:
        await vtn.stop()
        await meter.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
