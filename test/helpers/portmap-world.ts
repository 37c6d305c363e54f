// An in-memory world for port-control client tests: a FakePacketSocket whose datagrams
// to the gateway reach a FakePortmapGateway core (answers arrive a microtask later), a
// ManualClock, and counter-based randomness, so schedules and nonces are exact.
import type { Endpoint, Env, Network } from '../../src/net/index.ts';
import { silentLogger } from '../../src/net/node/index.ts';
import { FakePacketSocket } from './fake-socket.ts';
import { FakePortmapGateway, type FakeGatewayOptions } from './fake-portmap-gateway.ts';
import { ManualClock } from './manual-clock.ts';

export const GATEWAY: Endpoint = { address: '192.168.1.1', port: 5351, family: 4 };
export const LOCAL: Endpoint = { address: '192.168.1.2', port: 40_001, family: 4 };

/** A socket whose sends to the gateway are answered by the fake gateway's core. */
class LinkedSocket extends FakePacketSocket {
  private readonly world: PortmapWorld;

  constructor(world: PortmapWorld) {
    super(LOCAL);
    this.world = world;
  }

  override send(data: Uint8Array, to: Endpoint): void {
    super.send(data, to);
    const w = this.world;
    w.sendTimes.push(w.clock.now());
    if (!w.answering || to.address !== GATEWAY.address || to.port !== GATEWAY.port) return;
    const reply = w.gateway.handle(data, LOCAL, w.clock.now());
    if (reply !== undefined) queueMicrotask(() => this.deliver(reply, GATEWAY));
  }
}

/** The test's world. */
export class PortmapWorld {
  readonly clock = new ManualClock();
  readonly gateway: FakePortmapGateway;
  readonly socket: LinkedSocket;
  /** Clock time of every datagram sent. */
  readonly sendTimes: number[] = [];
  /** False: the gateway hears nothing (the test plays answers with `socket.deliver`). */
  answering = true;
  /** What env.random.bytes(n) gives: by default n copies of a byte that counts up from 1 per call. */
  randomBytes: (n: number) => Uint8Array;
  private counter = 0;
  readonly env: Env;

  constructor(options: FakeGatewayOptions = {}) {
    this.gateway = new FakePortmapGateway(options, 0);
    this.randomBytes = (n) => new Uint8Array(n).fill(++this.counter & 0xff);
    this.socket = new LinkedSocket(this);
    const network: Network = {
      bindUdp: () => Promise.resolve(this.socket),
      listenStream: () => Promise.reject(new Error('no streams here')),
      connectStream: () => Promise.reject(new Error('no streams here')),
    };
    this.env = {
      network,
      clock: this.clock,
      random: { bytes: (n) => this.randomBytes(n) },
      logger: silentLogger,
    };
  }

  /** Lets queued answers and promise continuations run. */
  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Advances the clock by `ms` in steps, letting answers in between. */
  async advance(ms: number, stepMs = ms): Promise<void> {
    for (let done = 0; done < ms; done += stepMs) {
      this.clock.advance(Math.min(stepMs, ms - done));
      await this.settle();
    }
  }
}
