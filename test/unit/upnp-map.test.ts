// The fallbacks of mapPortWithFallbacks (upnp-map.ts) against a scripted gateway: every
// call is recorded, every answer is chosen by the test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mapPortWithFallbacks, type PortMappingActions, type UpnpMappingEntry, type UpnpPortMapping } from '../../src/portmap/upnp-map.ts';
import { UpnpFaultError } from '../../src/portmap/upnp-index.ts';
import { isNatkitError } from '../../src/util/index.ts';

type Call = readonly [string, number, number];
type Answer = number | 'ok' | UpnpMappingEntry | undefined;

/** A gateway whose answers come from `script` in order (400–999: a UPnP fault code; other numbers: a reserved port). */
function scripted(version: 1 | 2, script: Answer[]): { gw: PortMappingActions; calls: Call[] } {
  const calls: Call[] = [];
  const next = (action: string, m: { externalPort: number; leaseS?: number }): Answer => {
    calls.push([action, m.externalPort, m.leaseS ?? -1]);
    const a = script.shift();
    if (typeof a === 'number' && a >= 400 && a < 1000) throw new UpnpFaultError(action, a, '', 500);
    return a;
  };
  // The executor turns a thrown fault into a rejection, as a real call would.
  const later = <T,>(fn: () => T): Promise<T> => new Promise((resolve) => resolve(fn()));
  const gw: PortMappingActions = {
    version,
    addPortMapping: (m) => later(() => void next('AddPortMapping', m)),
    addAnyPortMapping: (m) => later(() => next('AddAnyPortMapping', m) as number),
    deletePortMapping: (k) => later(() => void next('DeletePortMapping', k)),
    getSpecificPortMappingEntry: (k) => later(() => next('GetSpecificPortMappingEntry', k) as UpnpMappingEntry | undefined),
  };
  return { gw, calls };
}

const M: UpnpPortMapping = { remoteHost: '', externalPort: 5000, protocol: 'UDP', internalPort: 5000, internalClient: '192.168.1.10', enabled: true, description: 'natkit', leaseS: 3600 };
const signal = new AbortController().signal;
let port = 40000;
const opts = { signal, maxAttempts: 3, randomPort: () => ++port };
const entry = (client: string, internalPort: number): UpnpMappingEntry => ({ ...M, internalClient: client, internalPort });

test('IGD:1, accepted at once', async () => {
  const { gw, calls } = scripted(1, ['ok']);
  const r = await mapPortWithFallbacks(gw, M, opts);
  assert.deepEqual([r.externalPort, r.leaseS, r.action, r.conflicts], [5000, 3600, 'AddPortMapping', 0]);
  assert.deepEqual(calls, [['AddPortMapping', 5000, 3600]]);
});

test('725 OnlyPermanentLeasesSupported: retried once with lease 0', async () => {
  const { gw, calls } = scripted(1, [725, 'ok']);
  const r = await mapPortWithFallbacks(gw, M, opts);
  assert.equal(r.leaseS, 0);
  assert.deepEqual(calls, [['AddPortMapping', 5000, 3600], ['AddPortMapping', 5000, 0]]);
});

test('718 on someone else\'s port: another external port, bounded', async () => {
  port = 40000;
  const { gw, calls } = scripted(1, [718, entry('192.168.1.99', 5000), 'ok']);
  const r = await mapPortWithFallbacks(gw, M, opts);
  assert.deepEqual([r.externalPort, r.conflicts], [40001, 1]);
  assert.deepEqual(calls.map((c) => c[0]), ['AddPortMapping', 'GetSpecificPortMappingEntry', 'AddPortMapping']);

  const busy = scripted(1, [718, entry('192.168.1.99', 5000), 729, 718, 718]);
  await assert.rejects(mapPortWithFallbacks(busy.gw, M, opts), (e) => e instanceof UpnpFaultError && e.upnpCode === 718);
  assert.equal(busy.calls.filter((c) => c[0] === 'AddPortMapping').length, 3, 'maxAttempts ports tried, no more');
});

test('718 on our own stale mapping: deleted and re-added on the same port', async () => {
  const { gw, calls } = scripted(1, [718, entry('192.168.1.10', 5000), 'ok', 'ok']);
  const r = await mapPortWithFallbacks(gw, M, opts);
  assert.equal(r.externalPort, 5000);
  assert.deepEqual(calls.map((c) => c[0]), ['AddPortMapping', 'GetSpecificPortMappingEntry', 'DeletePortMapping', 'AddPortMapping']);
});

test('724 SamePortValuesRequired: the external port becomes the internal one', async () => {
  const { gw, calls } = scripted(1, [724, 'ok']);
  const r = await mapPortWithFallbacks(gw, { ...M, externalPort: 6000 }, opts);
  assert.equal(r.externalPort, 5000);
  assert.deepEqual(calls.map((c) => c[1]), [6000, 5000]);
});

test('IGD:2: AddAnyPortMapping, its reserved port returned', async () => {
  const { gw, calls } = scripted(2, [5123]);
  const r = await mapPortWithFallbacks(gw, M, opts);
  assert.deepEqual([r.externalPort, r.action], [5123, 'AddAnyPortMapping']);
  assert.deepEqual(calls, [['AddAnyPortMapping', 5000, 3600]]);
});

test('IGD:2 without the action (401, 602): AddPortMapping instead', async () => {
  for (const code of [401, 602]) {
    const { gw, calls } = scripted(2, [code, 'ok']);
    const r = await mapPortWithFallbacks(gw, M, opts);
    assert.equal(r.action, 'AddPortMapping');
    assert.deepEqual(calls.map((c) => c[0]), ['AddAnyPortMapping', 'AddPortMapping']);
  }
});

test('other faults are not retried: 606, 728, 402 reach the caller typed', async () => {
  for (const code of [606, 728, 402, 501]) {
    const { gw, calls } = scripted(1, [code]);
    await assert.rejects(mapPortWithFallbacks(gw, M, opts), (e) => isNatkitError(e, 'ERR_UPNP_FAULT') && e instanceof UpnpFaultError && e.upnpCode === code);
    assert.equal(calls.length, 1);
  }
});
