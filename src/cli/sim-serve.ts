// `natkit serve` itself, run in-process on a host of a simulated world: STUN on two
// addresses × two ports (RFC 5780), TURN and rendezvous on the shared primary port, the
// rendezvous TCP fallback on 3480, exactly as the command builds them on a real machine.
// `natkit demo` and the connect tests stand their world's server up this way.
import { endpoint, type Endpoint } from '../net/index.ts';
import type { SimHost, World } from '../net/sim/index.ts';
import { NatkitError } from '../util/index.ts';
import { serveCommand } from './commands/serve.ts';
import { runCli } from './run.ts';

/** The server's two public addresses in the simulated internet (198.18.0.0/15). */
export const SIM_SERVER_ADDRESSES = ['198.18.0.10', '198.18.0.11'] as const;
/** The TURN user the simulated server knows. */
export const SIM_TURN_USER = { username: 'demo', password: 'demo-password' } as const;

/** A running simulated `natkit serve`. */
export interface SimServe {
  readonly host: SimHost;
  /** STUN, TURN and rendezvous over UDP: A1:3478. */
  readonly endpoint: Endpoint;
  /** The rendezvous TCP fallback: A1:3480. */
  readonly rendezvousTcp: Endpoint;
  /** What the command printed so far. */
  output(): string;
  /** Stops it as SIGINT would; resolves with its exit code. */
  stop(): Promise<number>;
}

/** Starts `natkit serve` on a new host "server" of `world`; rejects with ERR_PROTOCOL when it does not come up. */
export async function startSimServe(world: World): Promise<SimServe> {
  const [a1, a2] = SIM_SERVER_ADDRESSES;
  const host = world.addHost({ name: 'server', addresses: [a1, a2], ipv6: false });
  const stop = new AbortController();
  let text = '';
  const io = { out: (t: string): void => void (text += t), err: (t: string): void => void (text += t) };
  const argv = [
    'serve', '-l', a1, '-l', a2, '--user', `${SIM_TURN_USER.username}:${SIM_TURN_USER.password}`,
    // The simulated internet is 198.18.0.0/15, a special-purpose range TURN refuses by default (RFC 8656 §21.3).
    '--allow-peer', '198.18.0.0/15',
  ];
  const exit = runCli([serveCommand], argv, { io, env: host.env, signal: stop.signal });
  // Binding and listening take no virtual time, only promise turns: a few short steps suffice.
  for (let step = 0; step < 50 && !text.includes('listening on'); step++) await world.elapse(1);
  if (!text.includes('listening on')) {
    stop.abort();
    await world.run(exit);
    throw new NatkitError('ERR_PROTOCOL', `natkit serve did not start in the simulated world: ${text.trim()}`);
  }
  return {
    host,
    endpoint: endpoint(a1, 3478),
    rendezvousTcp: endpoint(a1, 3480),
    output: () => text,
    stop: () => {
      stop.abort();
      return world.run(exit);
    },
  };
}
