// The library example of README.md (test/unit/readme.test.ts keeps the two identical), typechecked by CI.
import { StunClient, StunServer, endpoint, nodeEnv } from '../src/index.ts';

const env = nodeEnv(); // real sockets, clock and randomness; tests pass a simulated Env

// A server on two addresses × two ports answers CHANGE-REQUEST (RFC 5780).
await using server = await StunServer.create({ env, addresses: ['127.0.0.1', '127.0.0.2'], ports: [3478, 3479] });
console.log('listening on', server.endpoints.length, 'sockets');

// A client: RFC 8489 §6.2.1 retransmissions over UDP, or TCP/TLS with framing.
await using client = await StunClient.create({ env, server: endpoint('127.0.0.1', 3478) });
const answer = await client.binding({ changeRequest: { changeIp: true, changePort: false }, signal: AbortSignal.timeout(5000) });
if (answer.ok) console.log(answer.mapped, answer.from, answer.otherAddress);
else console.log(answer.error.code, answer.error.reason); // an error response is a value
