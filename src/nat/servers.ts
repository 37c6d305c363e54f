// Public STUN servers `natkit check` uses when given none, in the order tried. Servers
// with two addresses (RFC 5780 OTHER-ADDRESS) come first: only they allow every test.
// docs/nat-check.md lists the same servers and what each supports.

/** A well-known public STUN server. */
export interface PublicStunServer {
  /** host:port */
  readonly host: string;
  /** Answers CHANGE-REQUEST from a second address (RFC 5780), so filtering and mapping can be measured. */
  readonly rfc5780: boolean;
  /** Who runs it. */
  readonly operator: string;
}

export const PUBLIC_STUN_SERVERS: readonly PublicStunServer[] = [
  { host: 'stun.stunprotocol.org:3478', rfc5780: true, operator: 'the STUNTMAN project' },
  { host: 'stun.sipgate.net:3478', rfc5780: true, operator: 'sipgate' },
  { host: 'stun.l.google.com:19302', rfc5780: false, operator: 'Google' },
  { host: 'stun.cloudflare.com:3478', rfc5780: false, operator: 'Cloudflare' },
];
