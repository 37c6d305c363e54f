// A connection to one peer as connect() hands it out: the punched path (which falls back
// to the relay and goes direct again by itself, engine.ts), the peer it reached (its name
// and the key the rendezvous server vouches holds it), and a close() that also lets go of
// what the connection took from the shared socket.
import { createHash } from 'node:crypto';
import type { PunchOrder } from '../rendezvous/index.ts';
import type { PunchConnection, PunchStats, PunchedPath } from './engine.ts';
import type { PunchPlan } from './strategy.ts';

/** The peer at the other end. */
export interface PeerInfo {
  readonly name: string;
  /** Its raw Ed25519 public key, from the PUNCH order. */
  readonly publicKey: Uint8Array;
  /** keyFingerprint(publicKey): compare it out of band to know it is the key you expect. */
  readonly fingerprint: string;
}

/** The first 8 bytes of SHA-256 over a raw public key, as 4 groups of 4 hex digits. */
export function keyFingerprint(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex').slice(0, 16).match(/..../g)!.join(':');
}

/** One peer's connection: send and receive datagrams whatever path carries them. */
export class PeerConnection implements AsyncDisposable {
  readonly peer: PeerInfo;
  /** The PUNCH order's pair id (hex). */
  readonly pairId: string;
  /** This side nominated the path. */
  readonly controlling: boolean;
  /** The room that introduced the pair; undefined for a connection by name. */
  readonly room: string | undefined;
  private readonly conn: PunchConnection;
  private readonly release: () => Promise<void>;
  private closeHandler: ((error?: Error) => void) | undefined;
  private closing: Promise<void> | undefined;
  /** Closed with the connection: the agent connect({ peer }) started for it alone. */
  private owner: AsyncDisposable | undefined;

  /** @internal connect.ts makes these; `release` frees what the punch took from the shared socket. */
  constructor(conn: PunchConnection, order: PunchOrder, release: () => Promise<void>) {
    this.conn = conn;
    this.release = release;
    this.peer = { name: order.peer.name, publicKey: order.peer.publicKey, fingerprint: keyFingerprint(order.peer.publicKey) };
    this.pairId = order.pairId;
    this.controlling = order.controlling;
    this.room = order.room;
    conn.onClose((error) => void this.ended(error));
  }

  /** The path data takes now. */
  get path(): PunchedPath {
    return this.conn.path;
  }

  /** What the strategy chose for this pair, and why. */
  get plan(): PunchPlan {
    return this.conn.plan;
  }

  get stats(): PunchStats {
    return this.conn.stats;
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  /** Sends one datagram to the peer on the current path; never throws (dropped once closed). Delivery is best effort. */
  send(data: Uint8Array): void {
    this.conn.send(data);
  }

  /** Sets the receiver of the peer's datagrams. */
  onMessage(handler: ((data: Uint8Array) => void) | undefined): void {
    this.conn.onMessage(handler);
  }

  /** Called with the new path on each change: relay fallback, upgrade back to direct. */
  onPathChange(handler: ((path: PunchedPath) => void) | undefined): void {
    this.conn.onPathChange(handler);
  }

  /** Called once when the connection ends: after close(), or with the error when no path could be kept. */
  onClose(handler: ((error?: Error) => void) | undefined): void {
    this.closeHandler = handler;
  }

  /** Stops the connection and frees its share of the socket; with connect({ peer }), closes everything connect() opened. Idempotent. */
  async close(): Promise<void> {
    await this.detach();
    await this.owner?.[Symbol.asyncDispose]();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal Makes close() also close `owner` (connect({ peer })). */
  own(owner: AsyncDisposable): void {
    this.owner = owner;
  }

  /** @internal Stops the connection and frees its share of the socket, leaving the owner alone (the agent closing it). */
  async detach(): Promise<void> {
    await this.conn.close();
    await this.end();
  }

  /** The punch ended (closed, or no path could be kept): free its share, then tell the user. */
  private async ended(error: Error | undefined): Promise<void> {
    await this.end();
    this.closeHandler?.(error);
  }

  private end(): Promise<void> {
    this.closing ??= this.release();
    return this.closing;
  }
}
