"""ADR gateway: an OpenADR 2.0b VEN that publishes demand-response events as BACnet points
and reports a BACnet meter to the VTN."""

__version__ = "1.0.0"
