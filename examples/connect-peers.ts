// The "Connect two peers" example of README.md, typechecked by CI: bob waits for
// connections, alice connects to him by name through a `natkit serve`, and they talk.
import { generateKeyPairSync } from 'node:crypto';
import { endpoint, nodeEnv } from '../src/index.ts';
import { connect } from '../src/punch/index.ts';
import { identityFromKey } from '../src/rendezvous/index.ts';

const env = nodeEnv();
const server = endpoint('198.51.100.7', 3478); // natkit serve: STUN, TURN and rendezvous on one port
const common = {
  env, rendezvous: server, rendezvousTcp: endpoint('198.51.100.7', 3480),
  turn: { server, username: 'alice', password: 's3cret' }, signal: AbortSignal.timeout(30_000),
};

// Bob listens: every peer that connects to "bob" yields a connection.
await using bob = await connect({ ...common, name: 'bob', identity: identityFromKey(generateKeyPairSync('ed25519').privateKey) });
bob.onConnection((conn) => conn.onMessage((data) => conn.send(data))); // an echo

// Alice connects by name: discovery, registration, the PUNCH order, the punch.
await using alice = await connect({ ...common, name: 'alice', peer: 'bob', identity: identityFromKey(generateKeyPairSync('ed25519').privateKey) });
console.log(alice.path, alice.plan.reason, alice.peer.fingerprint); // { kind: 'direct', method: 'predicted', … }
alice.onPathChange((path) => console.log('now', path.kind));    // relay fallback, direct again
alice.onMessage((data) => console.log(new TextDecoder().decode(data)));
alice.send(new TextEncoder().encode('hello bob'));
