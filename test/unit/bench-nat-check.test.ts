// The NAT discovery section of `npm run bench`: which runs select it, and how the
// reference's verdicts are read from turnutils_natdiscovery's output (coturn 4.6.1).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseNatDiscovery } from '../../bench/lib/nat-check.ts';
import { UsageError, parseBenchArgs } from '../../bench/lib/options.ts';

test('--only check runs NAT discovery alone; the default run adds it when it can; other --only lists leave it out', () => {
  const only = parseBenchArgs(['--only', 'check', '--check-nats', 'symmetric,full-cone']);
  assert.deepEqual([only.check, only.only, only.checkNats], ['on', [], ['symmetric', 'full-cone']]);
  const all = parseBenchArgs([]);
  assert.deepEqual([all.check, all.checkNats], ['auto', ['port-restricted-cone', 'symmetric']]);
  assert.equal(parseBenchArgs(['--only', 'natkit']).check, 'off');
  assert.deepEqual(parseBenchArgs(['--only', 'natkit,check']).only, ['natkit']);
  assert.throws(() => parseBenchArgs(['--only', 'check', '--check-nats', 'open']), (e) => e instanceof UsageError && /expected some of .*symmetric.*got "open"/.test(e.message));
});

test('turnutils_natdiscovery verdicts: mapping, filtering and hairpinning in RFC 4787 words', () => {
  const out = [
    '-= Hairpinning Behavior Discovery =-', 'STUN receive timeout..', 'STUN receive timeout..',
    '-= Mapping Behavior Discovery =-', 'NAT with Address and Port Dependent Mapping!',
    '-= Filtering Behavior Discovery =-', 'NAT with Address Dependent Filtering!',
  ].join('\n');
  assert.deepEqual(parseNatDiscovery(out), { mapping: 'address-and-port-dependent', filtering: 'address-dependent', hairpinning: false });
  assert.deepEqual(
    parseNatDiscovery('Received a request (maybe a successful hairpinning)\nNo NAT! (Endpoint Independent Mapping)\nNAT with Endpoint Independent Filtering!'),
    { mapping: 'endpoint-independent', filtering: 'endpoint-independent', hairpinning: true },
  );
  assert.deepEqual(parseNatDiscovery('Connection Timeout or Failure'), { mapping: undefined, filtering: undefined, hairpinning: false });
});
