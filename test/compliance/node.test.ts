// The Network compliance suite against NodeNetwork on the IPv4 and IPv6 loopbacks.
import { networkInterfaces } from 'node:os';
import { NodeNetwork } from '../../src/net/node/index.ts';
import { hasOpenssl, selfSignedCertificate } from '../helpers/tls.ts';
import { networkCompliance, type NetworkUnderTest } from './network.ts';

/** One NodeNetwork plays both hosts on `address`; TLS when openssl is there to make a certificate. */
async function loopback(address: string): Promise<NetworkUnderTest> {
  const network = new NodeNetwork();
  const tls = (await hasOpenssl()) ? await selfSignedCertificate() : undefined;
  return { a: { network, address }, b: { network, address }, ...(tls === undefined ? {} : { tls }) };
}

/** True when some interface carries ::1 (containers may run without IPv6). */
const hasIPv6Loopback = Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === 'IPv6' && i.address === '::1'));

networkCompliance('NodeNetwork on 127.0.0.1', () => loopback('127.0.0.1'));
if (hasIPv6Loopback) networkCompliance('NodeNetwork on ::1', () => loopback('::1'));
