// natkit/nat (layer 3): NAT behaviour discovery (RFC 5780, RFC 4787, RFC 3489 labels).
export * from './behaviour.ts';
export { checkNat, type CheckProgress, type NatCheckOptions, type NatReport, type NotMeasured } from './check.ts';
export { PUBLIC_STUN_SERVERS, type PublicStunServer } from './servers.ts';
