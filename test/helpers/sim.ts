// Helpers for tests in the simulated world (STYLE.md: "a failing simulated test prints the
// packet trace"; "every test leaves nothing behind"):
// - simTest(): a test body that gets a fresh World, prints its packet trace when it fails,
//   and fails when sockets or scheduled events outlive the body;
// - reflector(), mappedVia(), collect(): a LAN socket asks "where am I?" and listens;
// - realTimePump(): drives a world's virtual clock at the pace of the wall clock, for
//   suites written against real time (the Network compliance suite).
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { endpointKey, type Endpoint, type PacketSocket } from '../../src/net/index.ts';
import { World, type SimHost, type WorldOptions } from '../../src/net/sim/index.ts';

/** Options of simTest() beyond the world's. */
export interface SimTestOptions extends WorldOptions {
  /** Fail when events are still scheduled after the body (timers left running). @default true */
  readonly checkIdle?: boolean;
}

/**
 * Wraps a test body: a new World for it; on failure the packet trace goes to the test's
 * diagnostics (printed under the failed test; on stderr when called without a test
 * context); after success, no simulated socket may be open and no event scheduled. The
 * world is closed either way.
 */
export function simTest(options: SimTestOptions, body: (world: World) => Promise<void>): (t?: TestContext) => Promise<void> {
  return async (t?: TestContext): Promise<void> => {
    const world = new World(options);
    try {
      await body(world);
      const open = world.openSockets();
      assert.deepEqual(open, { udp: 0, listeners: 0, streams: 0 }, 'the test left simulated sockets open');
      if (options.checkIdle ?? true) {
        // Let what was just sent (closes on their way) arrive; then nothing may be left.
        const idle = await world.settle({ maxMs: 60_000 });
        assert.ok(idle, `the test left ${world.clock.pending} simulated events scheduled beyond a minute (a timer still running?)`);
      }
    } catch (err) {
      printTrace(world, t);
      throw err;
    } finally {
      await world.close();
    }
  };
}

/** Puts the world's packet trace into the test's output (its diagnostics), or on stderr without a test. */
export function printTrace(world: World, t?: TestContext): void {
  const text = world.trace.format();
  if (t !== undefined) t.diagnostic(text);
  else process.stderr.write(`${text}\n`);
}

/** A pump that keeps a world's clock at the wall clock's pace until stopped. */
export interface Pump {
  stop(): void;
}

/**
 * Advances `world.clock` as real time passes (checked every millisecond), so code that
 * waits with real timers sees virtual timeouts after the same real time. For suites
 * written against real sockets; deterministic tests use world.run() instead.
 */
export function realTimePump(world: World): Pump {
  const realStart = performance.now();
  const virtualStart = world.clock.now();
  const timer = setInterval(() => world.clock.advanceTo(virtualStart + performance.now() - realStart), 1);
  return { stop: () => clearInterval(timer) };
}

/** A datagram a test socket received. */
export interface Received {
  readonly from: Endpoint;
  readonly text: string;
}

/** Records every datagram `socket` receives, as text, in arrival order. */
export function collect(socket: PacketSocket): Received[] {
  const got: Received[] = [];
  socket.onPacket((data, from) => got.push({ from, text: new TextDecoder().decode(data) }));
  return got;
}

/**
 * A UDP socket on `host` at `address:port` that answers each datagram with the sender's
 * endpoint as the server saw it (the seed's "ip,port" server, as `endpointKey` text).
 */
export async function reflector(host: SimHost, address: string, port: number): Promise<PacketSocket> {
  const socket = await host.network.bindUdp({ address, port });
  socket.onPacket((_data, from) => socket.send(new TextEncoder().encode(endpointKey(from)), from));
  return socket;
}

/** Sends `text` from `socket` to `to`. */
export function sendText(socket: PacketSocket, to: Endpoint, text: string): void {
  socket.send(new TextEncoder().encode(text), to);
}

/**
 * Sends a datagram to a reflector and returns the mapped endpoint it reports (as
 * `endpointKey` text), or undefined when no answer came within `waitMs` virtual ms.
 */
export async function mappedVia(world: World, socket: PacketSocket, reflectorAt: Endpoint, waitMs = 100): Promise<string | undefined> {
  const got: Received[] = [];
  socket.onPacket((data, from) => got.push({ from, text: new TextDecoder().decode(data) }));
  sendText(socket, reflectorAt, 'where am I?');
  await world.elapse(waitMs);
  socket.onPacket(undefined);
  return got.find((r) => endpointKey(r.from) === endpointKey(reflectorAt))?.text;
}

/** Reflectors on every address × port of a host (the RFC 5780 server layout), closed together. */
export interface ReflectorGrid extends AsyncDisposable {
  /** The reflector on address `a` and port `p` (0-based indexes). */
  at(a: number, p: number): Endpoint;
  close(): Promise<void>;
}

/** Starts a reflector on each of `addresses` × `ports` of `host`. */
export async function reflectorGrid(host: SimHost, addresses: readonly string[], ports: readonly number[]): Promise<ReflectorGrid> {
  const sockets: PacketSocket[][] = [];
  for (const address of addresses) {
    const row: PacketSocket[] = [];
    for (const port of ports) row.push(await reflector(host, address, port));
    sockets.push(row);
  }
  const close = async (): Promise<void> => {
    await Promise.all(sockets.flat().map((s) => s.close()));
  };
  return {
    at: (a, p) => {
      const s = sockets[a]?.[p];
      if (s === undefined) throw new Error(`no reflector at address ${a}, port ${p}`);
      return s.local;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
