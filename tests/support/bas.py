"""A simulated building automation controller (bacpypes3, real BACnet/IP on loopback) with commandable
analog, binary and multi-state values, for the write-through tests."""

from __future__ import annotations

from typing import Any, Optional

from bacpypes3.app import Application
from bacpypes3.local.analog import AnalogValueObjectCmd
from bacpypes3.local.binary import BinaryValueObject
from bacpypes3.local.cmd import Commandable
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.multistate import MultiStateValueObject
from bacpypes3.local.networkport import NetworkPortObject


class BinaryValueCmd(Commandable, BinaryValueObject):  # type: ignore[misc]
    pass


class MultiStateValueCmd(Commandable, MultiStateValueObject):  # type: ignore[misc]
    pass


class SimulatedBas:
    def __init__(self, port: int, device_id: int = 4001) -> None:
        self.port = port
        self.device_id = device_id
        self.app: Any = None
        self.online = True
        self.setpoint = AnalogValueObjectCmd(objectIdentifier=("analog-value", 5), objectName="ZN-T-SP",
                                             presentValue=72.0, relinquishDefault=72.0, units="degreesFahrenheit")
        self.fan = BinaryValueCmd(objectIdentifier=("binary-value", 6), objectName="AHU-Fan-Enable",
                                  presentValue="active", relinquishDefault="active")
        self.mode = MultiStateValueCmd(objectIdentifier=("multi-state-value", 7), objectName="Chiller-Mode",
                                       presentValue=1, relinquishDefault=1, numberOfStates=3)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        bas = self

        class BasApplication(Application):  # type: ignore[misc]
            async def do_WritePropertyRequest(self, apdu: Any) -> None:  # noqa: N802 - bacpypes3 name
                if bas.online:
                    await super().do_WritePropertyRequest(apdu)

            async def do_ReadPropertyRequest(self, apdu: Any) -> None:  # noqa: N802
                if bas.online:
                    await super().do_ReadPropertyRequest(apdu)

        self.app = BasApplication.from_object_list([
            DeviceObject(objectIdentifier=("device", self.device_id), objectName="sim-bas", vendorIdentifier=999),
            NetworkPortObject(f"127.0.0.1/8:{self.port}", objectIdentifier=("network-port", 1), objectName="NP1"),
            self.setpoint, self.fan, self.mode])

    def slot(self, obj: Any, priority: int) -> Optional[object]:
        from adrgw.bacnet.writer import slot_value

        return slot_value(obj.priorityArray[priority - 1])

    def slots(self, obj: Any) -> list[Optional[object]]:
        from adrgw.bacnet.writer import slot_value

        return [slot_value(v) for v in obj.priorityArray]

    def stop(self) -> None:
        if self.app is not None:
            self.app.close()
            self.app = None
