// The server's sockets as roles: RFC 5780 §4.1/§6 and RFC 3489 §8.1 — up to two IP
// addresses (A1, A2) × two ports (P1, P2), per transport. CHANGE-REQUEST picks the
// role a reply leaves from (RFC 5780 §6.1, table 1).
import type { Endpoint } from '../../net/index.ts';
import { NatkitError, ipFamily, normalizeAddress } from '../../util/index.ts';

/** Transports a STUN server answers on (RFC 8489 §6.2). */
export type ServerTransport = 'udp' | 'tcp' | 'tls';

/**
 * A socket's place in the 2×2 layout: bit 1 = alternate address, bit 0 = alternate port.
 * XOR with a CHANGE-REQUEST's flags gives the role of the changed socket.
 */
export const ServerRole = {
  /** A1:P1 */
  PRIMARY: 0,
  /** A1:P2 */
  ALT_PORT: 1,
  /** A2:P1 */
  ALT_ADDRESS: 2,
  /** A2:P2 */
  ALT_BOTH: 3,
} as const;
export type ServerRole = (typeof ServerRole)[keyof typeof ServerRole];

/** Every role, in order. */
export const SERVER_ROLES: readonly ServerRole[] = [0, 1, 2, 3];

/** Where a server listens: one or two addresses of one family, one or two ports per transport. */
export interface ServerLayout {
  /** [A1] or [A1, A2]; both of one family. */
  readonly addresses: readonly string[];
  /** [P1] or [P1, P2] for each transport served. */
  readonly ports: { readonly [T in ServerTransport]?: readonly number[] };
}

/** Display name of a role: 'A1:P1' … 'A2:P2'. */
export function roleName(role: ServerRole): string {
  return `A${(role >> 1) + 1}:P${(role & 1) + 1}`;
}

/** The role a reply leaves from when the request came in on `role` (RFC 5780 §6.1, table 1). */
export function changedRole(role: ServerRole, changeIp: boolean, changePort: boolean): ServerRole {
  return (role ^ (changeIp ? 2 : 0) ^ (changePort ? 1 : 0)) as ServerRole;
}

/** The local endpoint of a role on a transport, when the layout has it. */
export function roleEndpoint(layout: ServerLayout, transport: ServerTransport, role: ServerRole): Endpoint | undefined {
  const address = layout.addresses[role >> 1];
  const port = layout.ports[transport]?.[role & 1];
  if (address === undefined || port === undefined) return undefined;
  const family = ipFamily(address);
  return family === undefined ? undefined : { address, port, family };
}

/**
 * True when all four roles exist on this transport: only then can CHANGE-REQUEST be
 * honoured and OTHER-ADDRESS be sent (RFC 5780 §6: "If a server cannot allocate the same
 * ports on two different IP address, then it MUST NOT include an OTHER-ADDRESS").
 */
export function hasAlternate(layout: ServerLayout, transport: ServerTransport): boolean {
  return layout.addresses.length === 2 && layout.ports[transport]?.length === 2;
}

/** True for 0.0.0.0 and ::, which say nothing about where a reply came from. */
export function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** Checks and normalises a layout; throws ERR_CONFIG naming what is wrong. */
export function validateLayout(layout: ServerLayout): ServerLayout {
  const { addresses } = layout;
  if (addresses.length < 1 || addresses.length > 2) {
    throw new NatkitError('ERR_CONFIG', `addresses: expected one or two, got ${addresses.length}`);
  }
  const normal = addresses.map((a) => {
    if (ipFamily(a) === undefined) throw new NatkitError('ERR_CONFIG', `addresses: expected an IP address, got "${a}"`);
    return normalizeAddress(a);
  });
  if (normal.length === 2) {
    const [a1, a2] = normal as [string, string];
    if (ipFamily(a1) !== ipFamily(a2)) throw new NatkitError('ERR_CONFIG', `addresses: expected one family, got ${a1} and ${a2}`);
    if (a1 === a2) throw new NatkitError('ERR_CONFIG', `addresses: expected two different addresses, got ${a1} twice`);
    // RFC 5780 §7.4: OTHER-ADDRESS tells the client where to go; a wildcard says nothing.
    if (isUnspecified(a1) || isUnspecified(a2)) {
      throw new NatkitError('ERR_CONFIG', `addresses: two addresses must be concrete, got ${a1} and ${a2}`);
    }
  }
  const ports: { [T in ServerTransport]?: readonly number[] } = {};
  for (const t of ['udp', 'tcp', 'tls'] as const) {
    const list = layout.ports[t];
    if (list === undefined) continue;
    if (list.length < 1 || list.length > 2) throw new NatkitError('ERR_CONFIG', `${t} ports: expected one or two, got ${list.length}`);
    for (const p of list) {
      if (!Number.isInteger(p) || p < 0 || p > 0xffff) throw new NatkitError('ERR_CONFIG', `${t} ports: ${p} outside 0–65535`);
    }
    if (list.length === 2 && list[0] === list[1] && list[0] !== 0) {
      throw new NatkitError('ERR_CONFIG', `${t} ports: expected two different ports, got ${list[0]} twice`);
    }
    ports[t] = [...list];
  }
  return { addresses: normal, ports };
}
