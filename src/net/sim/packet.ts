// What travels through the simulated world: UDP datagrams and the segments of the
// simplified TCP of stream.ts, with the addresses as they are at the current hop.
import type { Endpoint } from '../types.ts';

/** Transport protocol of a simulated packet. */
export type SimProto = 'udp' | 'tcp';

/** Kinds of simulated TCP segment; TLS handshake messages are modelled, not encrypted. */
export type TcpFlag = 'SYN' | 'SYN-ACK' | 'DATA' | 'FIN' | 'RST' | 'TLS-HELLO' | 'TLS-SERVER-HELLO' | 'TLS-FINISHED' | 'TLS-ALERT';

/**
 * What one end of a stream shares with the other in-process: the bytes its application
 * has read. Flow control is modelled without ACK packets; a writer compares what it
 * wrote with what its peer has read.
 */
export interface FlowEnd {
  readonly consumedBytes: number;
}

/** The TCP part of a segment. */
export interface TcpSegment {
  readonly flag: TcpFlag;
  /** Position in the sender's ordered stream (DATA, FIN, TLS-*); -1 for SYN, SYN-ACK and RST. */
  readonly seq: number;
  /** TLS-SERVER-HELLO: the server's certificate, compared with the client's trusted CA. */
  readonly cert?: string;
  /** SYN and SYN-ACK: the sending end, for flow control. */
  readonly end?: FlowEnd;
}

/** A packet at one point of its path; translation makes a new object with the same id. */
export interface SimPacket {
  /** Number shared by every hop, translation and copy of one sent packet. */
  readonly id: number;
  readonly proto: SimProto;
  readonly src: Endpoint;
  readonly dst: Endpoint;
  /** UDP payload or TCP DATA bytes (owned by the packet: copied on send). */
  readonly data: Uint8Array;
  readonly tcp?: TcpSegment;
  /** Routers passed so far are subtracted; 0 drops it (guards against routing loops). */
  readonly ttl: number;
}

/** Initial hop limit of every packet. */
export const INITIAL_TTL = 64;
