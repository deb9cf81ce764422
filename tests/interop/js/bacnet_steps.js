// Second independent BACnet client stack for the conformance tests: @bacnet-js/client (TypeScript/Node).
//
//   node bacnet_steps.js --target 127.0.0.1:PORT --port CLIENT_PORT --steps '[{"op": "read", ...}, ...]'
//        [--interface 127.0.0.1] [--broadcast 127.255.255.255]
//
// Runs the steps in order and prints one JSON array: one result per step, {"ok": ...} or {"error": "..."},
// with "ms" the step took (for diagnosis only).
// Every request has its own timeout (apduTimeout 2000 ms; waits are explicit), so the script ends.
// Steps:
//   {"op": "whoIs", "low": 599, "high": 599, "waitMs": 1500, "broadcast": false}
//                                                                   -> [{deviceId, vendorId, address}]
//   {"op": "whoHas", "name": "ADR-Event-Level", "waitMs": 1500}   -> [{deviceId, objectId, objectName}]
//   {"op": "read", "type": 8, "instance": 599, "property": 85, "index": 3}
//   {"op": "rpm", "type": 8, "instance": 599, "properties": [8], "maxApdu": 1, "maxSegments": 112}
//                                                                   -> [{id, index, value}]
//   {"op": "write", "type": 2, "instance": 1, "property": 85, "tag": 4, "value": 9.0, "priority": 16}
//   {"op": "wpm", "type": 2, "instance": 1, "writes": [{"property": 85, "tag": 4, "value": 9.0}]}
//   {"op": "subscribeCov", "type": 2, "instance": 1, "id": 7, "confirmed": false, "lifetime": 300}
//   {"op": "covWait", "waitMs": 3000}   -> notifications received since the last covWait
//   {"op": "dcc", "state": 1, "minutes": 1, "password": "x"}
//   {"op": "reinit", "state": 1, "password": "x"}
//   {"op": "timeSync", "utc": true, "iso": "2026-11-26T12:00:00Z"}
//   {"op": "readRange" | "privateTransfer" | "subscribeProperty", ...}  (services the device must reject)
//   {"op": "sleep", "ms": 500}
'use strict';

const Bacnet = require('@bacnet-js/client');
const BACnetClient = Bacnet.default || Bacnet;

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const target = { address: arg('--target') };
const steps = JSON.parse(arg('--steps', '[]'));
const client = new BACnetClient({
  port: Number(arg('--port')), interface: arg('--interface', '127.0.0.1'),
  broadcastAddress: arg('--broadcast', '127.255.255.255'), apduTimeout: 2000,
});
const covs = [];
client.on('covNotifyUnconfirmed', (msg) => covs.push({ confirmed: false, payload: msg.payload }));
client.on('covNotify', (msg) => {
  covs.push({ confirmed: true, payload: msg.payload });
  client.simpleAckResponse(msg.header.sender, msg.service, msg.invokeId);
});
client.on('error', () => {});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function plain(value) {
  // Buffers and nested objects as JSON-friendly values
  return JSON.parse(JSON.stringify(value, (key, v) => (v && v.type === 'Buffer' ? v.data : v)));
}

async function run(step) {
  const obj = { type: step.type, instance: step.instance };
  switch (step.op) {
    case 'whoIs': {
      const seen = [];
      const onIAm = (msg) => seen.push({ deviceId: msg.payload.deviceId, vendorId: msg.payload.vendorId,
        address: msg.header.sender.address });
      client.on('iAm', onIAm);
      // "broadcast": true sends a real broadcast (--broadcast), as a BAS does on a LAN
      if (step.broadcast) client.whoIs({ lowLimit: step.low, highLimit: step.high });
      else client.whoIs(target, { lowLimit: step.low, highLimit: step.high });
      await sleep(step.waitMs || 1500);
      client.removeListener('iAm', onIAm);
      return seen;
    }
    case 'whoHas': {
      const seen = [];
      const onIHave = (msg) => seen.push(plain(msg.payload));
      client.on('iHave', onIHave);
      // @bacnet-js/client has no Who-Has request helper: encode it with its own ASN.1/NPDU/BVLC layers
      const Asn1 = require('@bacnet-js/client/dist/lib/asn1');
      const Npdu = require('@bacnet-js/client/dist/lib/npdu');
      const Apdu = require('@bacnet-js/client/dist/lib/apdu');
      const E = require('@bacnet-js/client/dist/lib/enum');
      const buffer = client._getApduBuffer(target);
      Npdu.encode(buffer, E.NpduControlPriority.NORMAL_MESSAGE, target);
      Apdu.encodeUnconfirmedServiceRequest(buffer, E.PduType.UNCONFIRMED_REQUEST, E.UnconfirmedServiceChoice.WHO_HAS);
      Asn1.encodeContextCharacterString(buffer, 3, step.name);
      client.sendBvlc(target, buffer);
      await sleep(step.waitMs || 1500);
      client.removeListener('iHave', onIHave);
      return seen;
    }
    case 'read': {
      const options = step.index === undefined ? {} : { arrayIndex: step.index };
      const result = await client.readProperty(target, obj, step.property, options);
      return plain(result.values);
    }
    case 'rpm': {
      // maxApdu / maxSegments (BACnet enumerations) ask for a small APDU: a segmented answer
      const options = step.maxApdu === undefined ? {} : { maxApdu: step.maxApdu, maxSegments: step.maxSegments };
      const result = await client.readPropertyMultiple(target, [{ objectId: obj,
        properties: step.properties.map((id) => ({ id, index: 0xFFFFFFFF })) }], options);
      return plain(result.values[0].values).map((p) => ({ id: p.id, index: p.index, value: p.value }));
    }
    case 'write': {
      const options = step.priority === undefined ? {} : { priority: step.priority };
      await client.writeProperty(target, obj, step.property, [{ type: step.tag, value: step.value }], options);
      return 'ack';
    }
    case 'wpm': {
      await client.writePropertyMultiple(target, [{ objectId: obj, values: step.writes.map((w) => ({
        property: { id: w.property, index: 0xFFFFFFFF }, value: [{ type: w.tag, value: w.value }], priority: 0 })) }]);
      return 'ack';
    }
    case 'subscribeCov':
      await client.subscribeCov(target, obj, step.id, Boolean(step.cancel), Boolean(step.confirmed), step.lifetime || 0);
      return 'ack';
    case 'subscribeProperty':
      await client.subscribeProperty(target, obj, { id: 85, index: 0xFFFFFFFF }, step.id || 1, false, false);
      return 'ack';
    case 'covWait': {
      await sleep(step.waitMs || 1000);
      return covs.splice(0).map(plain);
    }
    case 'dcc': {
      const options = step.password === undefined ? {} : { password: step.password };
      await client.deviceCommunicationControl(target, step.minutes || 0, step.state, options);
      return 'ack';
    }
    case 'reinit': {
      const options = step.password === undefined ? {} : { password: step.password };
      await client.reinitializeDevice(target, step.state, options);
      return 'ack';
    }
    case 'timeSync': {
      const when = new Date(step.iso);
      if (step.utc) client.timeSyncUTC(target, when); else client.timeSync(target, when);
      await sleep(200);
      return 'sent';
    }
    case 'readRange':
      return plain(await client.readRange(target, obj, 1, 1));
    case 'privateTransfer':
      await client.confirmedPrivateTransfer(target, 999, 1, [1, 2, 3]);
      return 'ack';
    case 'sleep':
      await sleep(step.ms);
      return 'slept';
    default:
      throw new Error(`unknown step ${step.op}`);
  }
}

(async () => {
  const results = [];
  await sleep(100); // the socket binds asynchronously
  for (const step of steps) {
    const started = Date.now();
    try {
      results.push({ ok: await run(step), ms: Date.now() - started });
    } catch (err) {
      results.push({ error: String(err && err.message ? err.message : err), ms: Date.now() - started });
    }
  }
  client.close();
  // exit once the output is written: pending request timers must not keep the process alive
  process.stdout.write(`${JSON.stringify(results)}\n`, () => process.exit(0));
})();
