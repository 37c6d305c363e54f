// Which port-mapping protocols the gateway answers, and the external address each gives
// (the "PortMapping: UPnP, NAT-PMP, PCP" line of tailscale netcheck). PCP has no
// external-address opcode, so its probe maps the probing socket's own port for a minute
// and deletes it at once with the same nonce (RFC 6887 §11, §15); NAT-PMP asks for the
// address (RFC 6886 §3.2); UPnP searches by SSDP and asks GetExternalIPAddress.
import { isNatkitError } from '../util/index.ts';
import type { MapperProtocol } from './mapping.ts';
import type { PortControlClient } from './port-control.ts';
import type { RetransmitTimers } from './retransmit.ts';
import type { UpnpGateway } from './upnp-gateway.ts';

/** What one protocol's probe found. */
export interface ProtocolProbe {
  readonly protocol: MapperProtocol;
  /** A server of this protocol answered (even with a refusal). */
  readonly available: boolean;
  /** The external address it gave, if any. */
  readonly externalAddress?: string;
  /** From the first request to the verdict. */
  readonly durationMs: number;
  /** Why it is unavailable or gave no address: an error code or a result name. */
  readonly error?: string;
}

/** What PortMapper.probe() found. */
export interface PortMappingProbe {
  /** The NAT-PMP/PCP server asked, `address:port`; undefined without a gateway. */
  readonly gateway: string | undefined;
  readonly pcp: ProtocolProbe;
  readonly natpmp: ProtocolProbe;
  readonly upnp: ProtocolProbe;
  /** Protocols that answered, in the mapper's order. */
  readonly available: readonly MapperProtocol[];
  readonly durationMs: number;
}

/** What a probe is run with. */
export interface ProbeContext {
  readonly now: () => number;
  readonly control: PortControlClient | undefined;
  readonly upnp: () => Promise<UpnpGateway>;
  readonly timers: { readonly pcp: RetransmitTimers; readonly natpmp: RetransmitTimers };
  readonly signal: AbortSignal | undefined;
}

type Found = { readonly available: boolean; readonly externalAddress?: string | undefined; readonly error?: string };

const describe = (err: unknown): string => (isNatkitError(err) ? err.code : err instanceof Error ? err.message : String(err));

/** Probes one protocol; rejects only with ERR_ABORTED or ERR_CLOSED. */
export async function probeProtocol(protocol: MapperProtocol, ctx: ProbeContext): Promise<ProtocolProbe> {
  const start = ctx.now();
  let found: Found;
  try {
    found = await (protocol === 'pcp' ? probePcp(ctx) : protocol === 'natpmp' ? probeNatPmp(ctx) : probeUpnp(ctx));
  } catch (err) {
    if (isNatkitError(err, 'ERR_ABORTED') || isNatkitError(err, 'ERR_CLOSED')) throw err;
    found = { available: false, error: describe(err) };
  }
  return {
    protocol, available: found.available, durationMs: ctx.now() - start,
    ...(found.externalAddress !== undefined && { externalAddress: found.externalAddress }),
    ...(found.error !== undefined && { error: found.error }),
  };
}

async function probePcp(ctx: ProbeContext): Promise<Found> {
  if (ctx.control === undefined) return { available: false, error: 'no gateway' };
  const { pcp } = ctx.control;
  const call = { timers: ctx.timers.pcp, ...(ctx.signal && { signal: ctx.signal }) };
  const r = await pcp.map({ ...call, protocol: 'udp', internalPort: pcp.local.port, lifetimeS: 60 });
  // §9: UNSUPP_VERSION in version 0 is a NAT-PMP-only gateway, not a PCP server.
  if (!r.ok) return r.result === 'UNSUPP_VERSION' && r.version === 0 ? { available: false, error: 'NAT-PMP only' } : { available: true, error: r.result };
  const d = await pcp.delete(r.mapping, call);
  return { available: true, externalAddress: r.mapping.externalAddress, ...(!d.ok && { error: `probe mapping not deleted: ${d.result}` }) };
}

async function probeNatPmp(ctx: ProbeContext): Promise<Found> {
  const natpmp = ctx.control?.natpmp;
  if (natpmp === undefined) return { available: false, error: ctx.control === undefined ? 'no gateway' : 'IPv6 gateway' };
  const r = await natpmp.externalAddress({ timers: ctx.timers.natpmp, ...(ctx.signal && { signal: ctx.signal }) });
  return r.ok ? { available: true, externalAddress: r.externalAddress } : { available: true, error: r.result };
}

async function probeUpnp(ctx: ProbeContext): Promise<Found> {
  const gw = await ctx.upnp();
  const address = await gw.getExternalIPAddress(ctx.signal && { signal: ctx.signal });
  return address === undefined ? { available: true, error: 'not connected' } : { available: true, externalAddress: address };
}
