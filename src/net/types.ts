// The transport seam (docs/architecture.md §net): every protocol reaches the network,
// the clock and randomness only through these interfaces, so the same code runs on
// real sockets (net/node) and in the simulated world (net/sim).
import type { IpFamily } from '../util/index.ts';

/** A transport address. `address` is normalised: no IPv4-mapped IPv6, canonical IPv6. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  readonly family: IpFamily;
}

/** Receives one datagram; `data` is only valid during the call unless copied. */
export type PacketHandler = (data: Uint8Array, from: Endpoint) => void;

/** Counters every socket keeps; drivers read them, nothing resets them. */
export interface SocketStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Sends the OS or the path refused (counted, not thrown: UDP is best effort). */
  sendErrors: number;
}

/** A bound datagram socket. */
export interface PacketSocket {
  readonly local: Endpoint;
  readonly closed: boolean;
  readonly stats: SocketStats;
  /** Queues a datagram; failures are counted in `stats.sendErrors`, never thrown. */
  send(data: Uint8Array, to: Endpoint): void;
  /** Sets the one receiver of datagrams (undefined: drop them). Share a socket through PacketMux. */
  onPacket(handler: PacketHandler | undefined): void;
  /** Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A connected, ordered byte stream (TCP or TLS). */
export interface StreamSocket {
  readonly local: Endpoint;
  readonly remote: Endpoint;
  readonly closed: boolean;
  /** True when the stream is TLS. */
  readonly secure: boolean;
  /** Queues bytes; returns false when the peer is slow (backpressure), like net.Socket#write. */
  write(data: Uint8Array): boolean;
  /** Sets the receiver of incoming bytes. */
  onData(handler: ((data: Uint8Array) => void) | undefined): void;
  /** Called once when the stream ends for any reason; `error` when it failed. */
  onClose(handler: ((error?: Error) => void) | undefined): void;
  /** Idempotent; ends the stream. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A listening stream server; connections go to the handler given to listenStream. */
export interface StreamListener {
  readonly local: Endpoint;
  /** Stops accepting and closes every accepted stream. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** TLS material for a stream listener (PEM). */
export interface TlsServerOptions {
  readonly cert: string | Uint8Array;
  readonly key: string | Uint8Array;
}

/** TLS settings for an outgoing stream. */
export interface TlsClientOptions {
  /** Name checked against the certificate and sent as SNI. @default the address */
  readonly servername?: string;
  /** Extra trusted CA certificates (PEM). */
  readonly ca?: string | Uint8Array;
  /** Verify the server certificate. @default true */
  readonly rejectUnauthorized?: boolean;
}

export interface BindOptions {
  /** Local address; '0.0.0.0' or '::' for any. @default '0.0.0.0' */
  readonly address?: string;
  /** Local port; 0 lets the system choose. @default 0 */
  readonly port?: number;
  readonly signal?: AbortSignal;
}

export interface ListenOptions extends BindOptions {
  /** Serve TLS instead of plain TCP. */
  readonly tls?: TlsServerOptions;
}

export interface ConnectOptions {
  /** Local address to connect from. */
  readonly localAddress?: string;
  readonly tls?: TlsClientOptions;
  /** Give up after this long. @default 10000 */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Where sockets come from. */
export interface Network {
  bindUdp(options?: BindOptions): Promise<PacketSocket>;
  listenStream(options: ListenOptions, onConnection: (stream: StreamSocket) => void): Promise<StreamListener>;
  connectStream(to: Endpoint, options?: ConnectOptions): Promise<StreamSocket>;
}

/** A pending timer. */
export interface Timer {
  /** Idempotent. */
  cancel(): void;
}

/** Time as protocol code sees it: monotonic milliseconds and one-shot timers. */
export interface Clock {
  /** Monotonic milliseconds; the origin is arbitrary. */
  now(): number;
  /** Calls `fn` once after `delayMs`. */
  setTimer(delayMs: number, fn: () => void): Timer;
}

/** Randomness as protocol code sees it. */
export interface Random {
  /** `n` random bytes; cryptographically strong on real networks (transaction ids, nonces). */
  bytes(n: number): Uint8Array;
}

/** Leveled, structured logging; the default drops everything. */
export interface Logger {
  debug(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  info(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(msg: string, fields?: Readonly<Record<string, unknown>>): void;
}

/** Everything a driver needs from the outside world, injected as one. */
export interface Env {
  readonly network: Network;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
}
