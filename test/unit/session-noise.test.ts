// Noise_XX_25519_ChaChaPoly_SHA256 (Noise rev 34) byte for byte against the published
// vectors, then the properties the session relies on: both sides agree on keys and h,
// the prologue and every handshake byte are bound, a tampered message fails the handshake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CipherState, HandshakeState, NOISE_XX_NAME, x25519KeyPair, type HandshakeResult } from '../../src/session/index.ts';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

interface Vector {
  readonly source: string;
  readonly prologue: string;
  readonly initStatic: string;
  readonly initEphemeral: string;
  readonly respStatic: string;
  readonly respEphemeral: string;
  readonly handshakeHash?: string;
  readonly messages: readonly { readonly payload: string; readonly ciphertext: string }[];
}

// Provenance: the Noise_XX_25519_ChaChaPoly_SHA256 entries of cacophony's
// vectors/cacophony.txt (haskell-cryptography/cacophony; mirrored in mcginty/snow
// tests/vectors/cacophony.txt) and of snow's tests/vectors/snow.txt.
const VECTORS: readonly Vector[] = [
  {
    source: 'cacophony',
    prologue: '4a6f686e2047616c74',
    initStatic: 'e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1',
    initEphemeral: '893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a',
    respStatic: '4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893',
    respEphemeral: 'bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b',
    handshakeHash: 'c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e',
    messages: [
      { payload: '4c756477696720766f6e204d69736573', ciphertext: 'ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573' },
      { payload: '4d757272617920526f746862617264', ciphertext: '95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f14480884381cbad1f276e038c48378ffce2b65285e08d6b68aaa3629a5a8639392490e5b9bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f8814c7194e83f23dbd8d162c9326ad' },
      { payload: '462e20412e20486179656b', ciphertext: 'c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a80ae475b9df0f169ae80a89be0865b57f58c9fea0d4ec82a286427402f113e4b6ae769a1d95941d49b25030' },
      { payload: '4361726c204d656e676572', ciphertext: '96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df' },
      { payload: '4a65616e2d426170746973746520536179', ciphertext: '3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5' },
      { payload: '457567656e2042f6686d20766f6e2042617765726b', ciphertext: 'eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f' },
    ],
  },
  {
    source: 'snow',
    prologue: '5468657265206973206e6f20726967687420616e642077726f6e672e2054686572652773206f6e6c792066756e20616e6420626f72696e672e',
    initStatic: '7dec208517a3b81a2861d7a71266d5d6dc944c5a8816634a86fe63198a0148ee',
    initEphemeral: 'a32daf21e93c0131495ce1d903181fde81cc46937daaeb990bae7c992709421e',
    respStatic: '4d0aed5098e3b4ef20357e9f686ce66204c792b358da2e475017d6c485304881',
    respEphemeral: '4eece0f195d026db035ff987597c429d3ad3bcc2944df37d649528951b2a27c5',
    messages: [
      { payload: 'd03c489139e645d0711a3c9e810d776b46a84912463fafa87b884eebf242dc34', ciphertext: 'f9fa868ba97ab8a2686deccfaad5a484ee10a5bb85e3d1dce015a84797f92818d03c489139e645d0711a3c9e810d776b46a84912463fafa87b884eebf242dc34' },
      { payload: 'd8190a92f7dc0c93dbea9118ba8055751fb7c6590c416ffbd419964132b99a85', ciphertext: '8c4e6fdb7d09d501a86f7eca5c234522751706ed409182c05cdf5f827d4dae47b81c6c5f43b025692c24391eefee725c17d8cb0fbe3e4abb8aedf42c4fd2592d4ea48ac08989d6ae8b4adae08b2c34087c808c7aa55a63c02b0fab9e930612336bd43eaea04d3c670a0a146691aa9cc9d357872320dc735dbc48580cffb553db' },
      { payload: '77891b19dcb92ef7c055b672c4a5aa7fdf1c84146b8b303459022729473ce254', ciphertext: '933ca6b5ed60df3df66121f0ab49a09e49efa45c613a86a3cecbf4c535cef2f83f72b42837b18e3572f2fdc2b74c331e2368a545cef54bdca081678ab0e9dd5348122459e0c034c851984d88ce610963d43cde6cfe73a67fbd5a63e8bfca96d0' },
      { payload: 'd7efdf988072881941db045a42882433817555128fbf5663e56081712ec7d212', ciphertext: '54ef0ff0629e1aaa7685a2806ab111cba76b52331f2642276736f415868eacb69ab2577f3bda0cbf72f879685f6ed25f' },
      { payload: 'dd7bf01a588bafb52c6cfba952e5d8fe35cc2b3f92b4730ae2474615157345ce', ciphertext: '356be70f110306d5c699bb834bb9d58d909e325924dfbec972e406e6f294dc63e1daebefe8a62a334facc8048ab4ad66' },
    ],
  },
];

function pair(prologue: Uint8Array, seeds?: { is: string; ie: string; rs: string; re: string }): [HandshakeState, HandshakeState] {
  const rnd = (): Uint8Array => new Uint8Array(Buffer.from(crypto.getRandomValues(new Uint8Array(32))));
  const i = new HandshakeState({
    initiator: true, prologue,
    staticKeyPair: x25519KeyPair(seeds ? hex(seeds.is) : rnd()),
    ephemeral: seeds ? () => hex(seeds.ie) : rnd,
  });
  const r = new HandshakeState({
    initiator: false, prologue,
    staticKeyPair: x25519KeyPair(seeds ? hex(seeds.rs) : rnd()),
    ephemeral: seeds ? () => hex(seeds.re) : rnd,
  });
  return [i, r];
}

for (const v of VECTORS) {
  test(`${v.source} vector: ${NOISE_XX_NAME} matches byte for byte`, () => {
    const [i, r] = pair(hex(v.prologue), { is: v.initStatic, ie: v.initEphemeral, rs: v.respStatic, re: v.respEphemeral });
    for (let m = 0; m < 3; m++) {
      const msg = v.messages[m]!;
      const [w, rd] = m % 2 === 0 ? [i, r] : [r, i];
      const out = w.writeMessage(hex(msg.payload));
      assert.equal(toHex(out), msg.ciphertext, `handshake message ${m}`);
      assert.equal(toHex(rd.readMessage(out)), msg.payload);
    }
    const a = i.complete!;
    const b = r.complete!;
    assert.deepEqual(a.handshakeHash, b.handshakeHash);
    if (v.handshakeHash !== undefined) assert.equal(toHex(a.handshakeHash), v.handshakeHash);
    assert.deepEqual(a.remoteStatic, x25519KeyPair(hex(v.respStatic)).publicKey);
    assert.deepEqual(b.remoteStatic, x25519KeyPair(hex(v.initStatic)).publicKey);
    for (let m = 3; m < v.messages.length; m++) {
      const msg = v.messages[m]!;
      const [s, rc] = m % 2 === 0 ? [a.send, b.receive] : [b.send, a.receive];
      const out = s.encryptWithAd(new Uint8Array(0), hex(msg.payload));
      assert.equal(toHex(out), msg.ciphertext, `transport message ${m}`);
      assert.equal(toHex(rc.decryptWithAd(new Uint8Array(0), out)), msg.payload);
    }
  });
}

function run(i: HandshakeState, r: HandshakeState): [HandshakeResult, HandshakeResult] {
  r.readMessage(i.writeMessage());
  i.readMessage(r.writeMessage());
  r.readMessage(i.writeMessage());
  return [i.complete!, r.complete!];
}

test('random keys: both sides derive the same transport keys and hash', () => {
  const [a, b] = run(...pair(new Uint8Array(0)));
  assert.deepEqual(a.send.key, b.receive.key);
  assert.deepEqual(a.receive.key, b.send.key);
  assert.notDeepEqual(a.send.key, a.receive.key);
  assert.deepEqual(a.handshakeHash, b.handshakeHash);
});

test('different prologues fail at the second message', () => {
  const [i] = pair(Uint8Array.of(1));
  const [, r] = pair(Uint8Array.of(2));
  r.readMessage(i.writeMessage());
  assert.throws(() => i.readMessage(r.writeMessage()), { code: 'ERR_PROTOCOL' });
  assert.throws(() => i.writeMessage(), /has failed/);
});

for (const at of [0, 40, 95]) {
  test(`a flipped byte at ${at} of message 2 fails the handshake`, () => {
    const [i, r] = pair(new Uint8Array(0));
    r.readMessage(i.writeMessage());
    const m2 = r.writeMessage(new Uint8Array(0));
    const bad = Uint8Array.from(m2);
    bad[at]! ^= 1;
    assert.throws(() => i.readMessage(bad), { code: 'ERR_PROTOCOL' });
    assert.equal(i.remoteStatic, undefined);
  });
}

test('out-of-turn and truncated messages are refused', () => {
  const [i, r] = pair(new Uint8Array(0));
  assert.throws(() => r.writeMessage(), /expected to read/);
  assert.throws(() => r.readMessage(new Uint8Array(10)), /truncated/);
  void i;
});

test('CipherState: rekey changes the key on both sides alike; no key passes through', () => {
  const k = new Uint8Array(32).fill(7);
  const a = new CipherState(k);
  const b = new CipherState(k);
  a.rekey();
  b.rekey();
  assert.notDeepEqual(a.key, k);
  assert.deepEqual(b.decryptWithAd(new Uint8Array(0), a.encryptWithAd(new Uint8Array(0), Uint8Array.of(1, 2))), Uint8Array.of(1, 2));
  assert.deepEqual(new CipherState().encryptWithAd(new Uint8Array(0), Uint8Array.of(9)), Uint8Array.of(9));
});
