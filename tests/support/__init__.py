"""What the tests share, so that no test file imports another one.

- ``process``: the gateway as a separate process (``spawn``, ``Proc``, ``Lines``) and the bac-py interpreter.
- ``config``: ONE builder for the gateway's config.ini text (``config_ini``, ``config_text``), in-process
  ``Settings`` (``gateway_settings``) and the config-problem helpers of the config tests.
- ``wait``: ``wait_for``, polling a condition with a deadline.
- ``readings``: the simulated meter's clock-valued readings and the exactly-once check on them.
- ``lan``: the addresses and network-namespace commands of the real-LAN tests.
- the peers: ``schema_vtn`` (a VTN from the 2.0b schema), ``faultproxy`` (an HTTP proxy that holds back or
  rewrites replies), ``bas`` (a simulated building controller), ``lan_peer`` (router, meter and VTN run
  inside a namespace), ``pki`` (a private CA), ``acks`` (acknowledging samples as the report service does).

Fixtures stay in ``tests/conftest.py``.
"""
