"""Runs under Python >= 3.13 with bac-py: a sequence of steps against one device, as a BAS would send
them (tests/test_standard_conformance.py; the @bacnet-js/client counterpart is js/bacnet_steps.js).

  python bacpy_steps.py --target IP:PORT --port CLIENT_PORT --steps '[{"op": "objects", "device": 599}, ...]'

Prints one JSON array: one result per step, {"ok": ...} or {"error": "<what the stack raised>"}.
Steps:
  {"op": "objects", "device": 599}                               -> ["analog-value,1", ...]
  {"op": "rpm", "object": "analog-value,1", "properties": ["all"]}
                            -> [{"property": "present-value", "error": null | "PROPERTY: UNKNOWN_PROPERTY"}]
  {"op": "read", "object": "device,599", "property": "local-date"}   -> the value, JSON-friendly
                                                    (property-list: the property names)
  {"op": "timeSync", "utc": false, "date": "2030-01-02", "time": "03:04:05"}   (unconfirmed: "sent")
  {"op": "write", "object": "binary-value,2", "property": "present-value", "hex": "4400000000",
   "priority": null}        raw application-tagged value bytes, sent as they are    -> "ack"
  {"op": "wpm", "object": "binary-value,2", "property": "present-value", "hex": "9101"}  -> "ack"
                            or {"error": "WritePropertyMultiple-Error: PROPERTY: INVALID_DATA_TYPE"}
  {"op": "sleep", "ms": 200}
"""

import argparse
import asyncio
import dataclasses
import datetime
import enum
import json

from bac_py import Client
from bac_py.encoding.primitives import decode_enumerated
from bac_py.encoding.tags import decode_tag
from bac_py.services.common import BACnetPropertyValue
from bac_py.services.errors import BACnetError
from bac_py.services.read_property_multiple import PropertyReference, ReadAccessSpecification
from bac_py.services.write_property_multiple import WriteAccessSpecification
from bac_py.types.enums import ErrorClass, ErrorCode, PropertyIdentifier
from bac_py.types.parsing import parse_object_identifier, parse_property_identifier
from bac_py.types.primitives import BACnetDate, BACnetTime


def plain(value):
    """bac-py values as JSON-friendly data."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    return str(value)


def write_property_multiple_error(exc: BACnetError) -> str:
    """The WritePropertyMultiple-Error in ``exc``. bac-py 1.5.7 decodes every Error PDU as a plain
    class/code pair, so for this one (ASHRAE 135 21: [0] errorType {class, code}, [1] first failed
    write attempt) it reads the opening tag [0] as the class and the class as the code, and keeps
    the rest as error_data: the real code, then the closing tag. Anything else is shown as bac-py
    decoded it."""
    data = exc.error_data
    try:
        tag, offset = decode_tag(data, 0)
        code = ErrorCode(decode_enumerated(data[offset:offset + tag.length]))
        closing, _ = decode_tag(data, offset + tag.length)
    except Exception:  # noqa: BLE001 - not the shape of a misread WritePropertyMultiple-Error
        return f"BACnetError: {exc}"
    if exc.error_class != ErrorClass.DEVICE or not closing.is_closing:
        return f"BACnetError: {exc}"
    return f"WritePropertyMultiple-Error: {ErrorClass(int(exc.error_code)).name}: {code.name}"


def name_of(prop) -> str:
    return prop.name.lower().replace("_", "-")


async def run(client: Client, target: str, step: dict):
    op = step["op"]
    if op == "objects":
        return [f"{name_of(o.object_type)},{o.instance_number}"
                for o in await client.get_object_list(target, step["device"], timeout=10)]
    if op == "rpm":
        spec = ReadAccessSpecification(
            object_identifier=parse_object_identifier(step["object"]),
            list_of_property_references=[PropertyReference(parse_property_identifier(p))
                                         for p in step["properties"]])
        ack = await client.read_property_multiple(target, [spec], timeout=10)
        return [{"property": name_of(e.property_identifier),
                 "error": None if e.property_access_error is None
                 else f"{e.property_access_error[0].name}: {e.property_access_error[1].name}"}
                for result in ack.list_of_read_access_results for e in result.list_of_results]
    if op == "read":
        value = await client.read(target, step["object"], step["property"])
        if step["property"] == "property-list":  # bac-py gives the identifiers as numbers
            return [name_of(PropertyIdentifier(int(v))) for v in value]
        return plain(value)
    if op == "timeSync":
        year, month, day = (int(x) for x in step["date"].split("-"))
        hour, minute, second = (int(x) for x in step["time"].split(":"))
        day_of_week = datetime.date(year, month, day).isoweekday()
        told = BACnetDate(year, month, day, day_of_week), BACnetTime(hour, minute, second, 0)
        if step["utc"]:
            client.utc_time_synchronization(target, *told)
        else:
            client.time_synchronization(target, *told)
        return "sent"
    if op == "write":
        await client.write_property(target, step["object"], step["property"], bytes.fromhex(step["hex"]),
                                    priority=step.get("priority"), timeout=10)
        return "ack"
    if op == "wpm":
        spec = WriteAccessSpecification(
            object_identifier=parse_object_identifier(step["object"]),
            list_of_properties=[BACnetPropertyValue(property_identifier=parse_property_identifier(step["property"]),
                                                    value=bytes.fromhex(step["hex"]))])
        try:
            await client.write_property_multiple(target, [spec], timeout=10)
        except BACnetError as exc:
            raise RuntimeError(write_property_multiple_error(exc)) from None
        return "ack"
    if op == "sleep":
        await asyncio.sleep(step["ms"] / 1000)
        return "slept"
    raise ValueError(f"unknown step {op}")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--steps", required=True)
    a = p.parse_args()
    results = []
    async with Client(instance_number=3995, interface="127.0.0.1", port=a.port) as client:
        for step in json.loads(a.steps):
            try:
                results.append({"ok": await asyncio.wait_for(run(client, a.target, step), 20)})
            except Exception as exc:  # noqa: BLE001 - report whatever the stack raised
                results.append({"error": f"{type(exc).__name__}: {exc}"})
    print(json.dumps(results))


asyncio.run(main())
