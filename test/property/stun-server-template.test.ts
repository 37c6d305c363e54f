// The STUN server core answers a Binding request without attributes to a basic server
// from a template (src/stun/server/template.ts): the full path's response to the first
// such request, with transaction ID and XOR-MAPPED-ADDRESS rewritten. fast-check: for
// random transaction IDs, senders (IPv4 and IPv6) and ports, with and without SOFTWARE,
// over UDP and TCP, the templated response is byte for byte the full path's (a fresh
// core's first answer), and the rate limit and counters work as on the full path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BINDING, SOFTWARE, StunClass, StunServerCore, attr, encodeMessage, totalDropped, type ServerInput, type ServerLayout,
  type ServerResult, type ServerTransport, type StunServerCoreOptions,
} from '../../src/stun/index.ts';
import { endpoint, type Endpoint } from '../../src/net/index.ts';

const LAYOUTS: Record<4 | 6, ServerLayout> = {
  4: { addresses: ['192.0.2.1'], ports: { udp: [3478], tcp: [3478] } },
  6: { addresses: ['2001:db8::1'], ports: { udp: [3478], tcp: [3478] } },
};
const TWO: ServerLayout = { addresses: ['192.0.2.1', '192.0.2.2'], ports: { udp: [3478, 3479], tcp: [3478, 3479] } };
/** SOFTWARE settings: the default, none, UTF-8 whose length needs padding, the longest allowed. */
const SOFTWARE_SETTINGS: readonly { readonly name: string; readonly software?: string | false }[] = [
  { name: 'default SOFTWARE' }, { name: 'no SOFTWARE', software: false }, { name: 'SOFTWARE of 14 bytes', software: 'natkit ✓ 0.1' },
  { name: 'SOFTWARE of 127 characters', software: 'x'.repeat(127) },
];

const bare = (id: Uint8Array): Uint8Array => encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: id });

const sender = (family: 4 | 6): fc.Arbitrary<Endpoint> =>
  fc.tuple(family === 4 ? fc.ipV4() : fc.ipV6(), fc.integer({ min: 1, max: 65535 })).map(([address, port]) => endpoint(address, port))
    .filter((e) => e.family === family); // fc.ipV6() also makes IPv4-mapped addresses, which normalise to IPv4

const input = (data: Uint8Array, from: Endpoint, transport: ServerTransport, now = 0): ServerInput => ({ data, role: 0, from, transport, now });

const sameResult = (fast: ServerResult, slow: ServerResult): void => {
  assert.equal(fast.outcome, 'success');
  assert.equal(slow.outcome, 'success');
  assert.ok(fast.reply && slow.reply);
  assert.deepEqual(fast.reply.data, slow.reply.data, 'byte-identical responses');
  assert.equal(fast.reply.via, slow.reply.via);
  assert.deepEqual(fast.reply.to, slow.reply.to);
};

for (const family of [4, 6] as const) {
  for (const { name, software } of SOFTWARE_SETTINGS) {
    for (const transport of ['udp', 'tcp'] as const) {
      test(`IPv${family}, ${name}, ${transport}: the template's response is the full path's, byte for byte`, () => {
        const options: StunServerCoreOptions = { layout: LAYOUTS[family], rateLimit: false, ...(software !== undefined && { software }) };
        const warm = new StunServerCore(options);
        fc.assert(
          fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), sender(family), (id, from) => {
            const data = bare(id);
            // A fresh core answers its first such request on the full path.
            const fresh = new StunServerCore(options);
            const slow = fresh.handle(input(data, from, transport));
            assert.equal(fresh.stats.templated, 0);
            const before = warm.stats.templated;
            const fast = warm.handle(input(data, from, transport));
            // Only the very first request of the shared core builds the template on the full path.
            if (warm.stats.received > 1) assert.equal(warm.stats.templated, before + 1, 'answered from the template');
            sameResult(fast, slow);
          }),
          { numRuns: 300 },
        );
        assert.equal(warm.stats.success, warm.stats.received);
        assert.equal(warm.stats.templated, warm.stats.received - 1);
      });
    }
  }
}

test('a sender of the other family than the first still gets the full path\'s bytes', () => {
  const core = new StunServerCore({ layout: LAYOUTS[6], rateLimit: false });
  const v6 = endpoint('2001:db8::7', 4000);
  const v4 = endpoint('198.51.100.7', 4000); // an IPv4 sender on an IPv6 layout: its own template
  const id = new Uint8Array(12).fill(9);
  core.handle(input(bare(id), v6, 'udp'));
  for (const from of [v4, v4, v6]) sameResult(core.handle(input(bare(id), from, 'udp')), new StunServerCore({ layout: LAYOUTS[6], rateLimit: false }).handle(input(bare(id), from, 'udp')));
  assert.equal(core.stats.templated, 2, 'the first IPv4 request built its own template');
});

test('templated answers keep the rate limit and the counters', () => {
  const core = new StunServerCore({ layout: LAYOUTS[4], rateLimit: { ratePerS: 2, burst: 3 } });
  const from = endpoint('198.51.100.7', 4000);
  const outcomes = (n: number, now: number): string[] =>
    Array.from({ length: n }, (_, i) => core.handle(input(bare(new Uint8Array(12).fill(i)), from, 'udp', now)).outcome);
  assert.deepEqual(outcomes(4, 0), ['success', 'success', 'success', 'dropped']);
  assert.deepEqual(outcomes(2, 500), ['success', 'dropped'], 'one token back per 500 ms');
  const s = core.stats;
  assert.equal(s.templated, 3, 'all but the first success came from the template');
  assert.equal(s.dropped['rate-limited'], 2);
  assert.equal(s.received, s.success + s.badRequest + s.unknownAttribute + s.plain + totalDropped(s));
  assert.equal(s.replies, 4);
});

test('no template for a full RFC 5780 server, a FINGERPRINT, or any attribute', () => {
  const from = endpoint('198.51.100.7', 4000);
  const two = new StunServerCore({ layout: TWO, rateLimit: false });
  for (let i = 0; i < 3; i++) two.handle(input(bare(new Uint8Array(12)), from, 'udp'));
  assert.equal(two.stats.templated, 0, 'RFC 5780 attributes depend on the receiving role');
  const one = new StunServerCore({ layout: LAYOUTS[4], rateLimit: false });
  one.handle(input(bare(new Uint8Array(12)), from, 'udp'));
  const withFingerprint = encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: new Uint8Array(12) }, { fingerprint: true });
  const withSoftware = encodeMessage({ method: BINDING, cls: StunClass.REQUEST, transactionId: new Uint8Array(12), attributes: [attr(SOFTWARE, 'client')] });
  for (const data of [withFingerprint, withSoftware]) assert.equal(one.handle(input(data, from, 'udp')).outcome, 'success');
  assert.equal(one.stats.templated, 0);
});
