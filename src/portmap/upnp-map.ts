// Asking a UPnP gateway for a port mapping the way real routers need to be asked
// (WANIPConnection:1 §2.4.16 AddPortMapping, WANIPConnection:2 §2.5.16 AddAnyPortMapping):
// - IGD:2 first tries AddAnyPortMapping, which picks a free port itself; gateways that
//   advertise :2 but lack the action (401, 602) fall back to AddPortMapping;
// - 725 OnlyPermanentLeasesSupported: IGD:1 routers that take only lease 0 — retry with 0;
// - 718 ConflictInMappingEntry / 729 ConflictWithOtherMechanisms: the port is taken —
//   when the entry is our own stale one (same client and port) replace it, else try
//   another external port, a bounded number of times;
// - 724 SamePortValuesRequired: retry with the external port equal to the internal one.
import { UpnpFaultError } from './upnp-soap.ts';

/** TCP or UDP, spelled as the service wants it. */
export type UpnpProtocol = 'TCP' | 'UDP';

/** The arguments of AddPortMapping and AddAnyPortMapping. */
export interface UpnpPortMapping {
  /** '' (any) or the one remote host allowed in. */
  readonly remoteHost: string;
  readonly externalPort: number;
  readonly protocol: UpnpProtocol;
  readonly internalPort: number;
  readonly internalClient: string;
  readonly enabled: boolean;
  readonly description: string;
  /** Seconds; 0 asks for a permanent mapping (IGD:2 turns it into 604800). */
  readonly leaseS: number;
}

/** A mapping as the gateway reports it (GetSpecificPortMappingEntry, GetGenericPortMappingEntry). */
export type UpnpMappingEntry = UpnpPortMapping;

/** The actions mapPort() needs; UpnpGateway provides them. */
export interface PortMappingActions {
  readonly version: 1 | 2;
  addPortMapping(m: UpnpPortMapping, options: { readonly signal: AbortSignal }): Promise<void>;
  addAnyPortMapping(m: UpnpPortMapping, options: { readonly signal: AbortSignal }): Promise<number>;
  deletePortMapping(key: { readonly remoteHost?: string; readonly externalPort: number; readonly protocol: UpnpProtocol }, options: { readonly signal: AbortSignal }): Promise<void>;
  getSpecificPortMappingEntry(key: { readonly remoteHost?: string; readonly externalPort: number; readonly protocol: UpnpProtocol }, options: { readonly signal: AbortSignal }): Promise<UpnpMappingEntry | undefined>;
}

/** What mapPort() is asked for. */
export interface UpnpMapRequest {
  readonly protocol: UpnpProtocol;
  /** The port on our host. */
  readonly internalPort: number;
  /** The external port wanted. @default internalPort */
  readonly externalPort?: number;
  /** Our LAN address. @default the address our connection to the gateway came from */
  readonly internalClient?: string;
  /** Shown in the router's table; natkit recognises its own mappings by it. @default 'natkit' */
  readonly description?: string;
  /** Lease in seconds; 0 asks for a permanent mapping. @default 3600 */
  readonly leaseS?: number;
  /** External ports tried in all after conflicts (718, 729). @default 4 */
  readonly maxAttempts?: number;
}

/** The mapping a gateway granted. */
export interface UpnpMapResult {
  readonly protocol: UpnpProtocol;
  readonly externalPort: number;
  readonly internalPort: number;
  readonly internalClient: string;
  /** The lease granted: 0 when the router only takes permanent mappings (725). */
  readonly leaseS: number;
  readonly description: string;
  /** The action that made it. */
  readonly action: 'AddAnyPortMapping' | 'AddPortMapping';
  /** Conflicts met before this port was granted. */
  readonly conflicts: number;
}

/** Maps a port with the fallbacks above; rejects with the last fault when none work. */
export async function mapPortWithFallbacks(
  gw: PortMappingActions,
  m: UpnpPortMapping,
  options: { readonly signal: AbortSignal; readonly maxAttempts: number; readonly randomPort: () => number },
): Promise<UpnpMapResult> {
  const signal = options.signal;
  const result = (mapping: UpnpPortMapping, action: UpnpMapResult['action'], conflicts: number): UpnpMapResult => ({
    protocol: mapping.protocol, externalPort: mapping.externalPort, internalPort: mapping.internalPort,
    internalClient: mapping.internalClient, leaseS: mapping.leaseS, description: mapping.description, action, conflicts,
  });
  let mapping = m;
  if (gw.version === 2) {
    for (let permanentRetry = 0; ; permanentRetry++) {
      try {
        const port = await gw.addAnyPortMapping(mapping, { signal });
        return result({ ...mapping, externalPort: port }, 'AddAnyPortMapping', 0);
      } catch (err) {
        if (faultCode(err) === 725 && mapping.leaseS !== 0 && permanentRetry === 0) {
          mapping = { ...mapping, leaseS: 0 };
          continue;
        }
        // Advertised IGD:2 without the action: fall back to IGD:1's AddPortMapping.
        if (faultCode(err) === 401 || faultCode(err) === 602) break;
        throw err;
      }
    }
  }
  let conflicts = 0;
  let replacedOwn = false;
  let permanentRetried = false;
  let samePortRetried = false;
  for (;;) {
    try {
      await gw.addPortMapping(mapping, { signal });
      return result(mapping, 'AddPortMapping', conflicts);
    } catch (err) {
      const code = faultCode(err);
      if (code === 725 && !permanentRetried && mapping.leaseS !== 0) {
        permanentRetried = true;
        mapping = { ...mapping, leaseS: 0 };
      } else if (code === 724 && !samePortRetried && mapping.externalPort !== mapping.internalPort) {
        samePortRetried = true;
        mapping = { ...mapping, externalPort: mapping.internalPort };
      } else if (code === 718 || code === 729) {
        conflicts++;
        if (!replacedOwn && (await isOurs(gw, mapping, signal))) {
          // Our own mapping from an earlier run (same client and port): replace it once.
          replacedOwn = true;
          await gw.deletePortMapping(mapping, { signal });
        } else {
          if (conflicts >= options.maxAttempts) throw err;
          mapping = { ...mapping, externalPort: options.randomPort() };
        }
      } else {
        throw err;
      }
    }
  }
}

/** The UPnP error code of a fault, else undefined. */
function faultCode(err: unknown): number | undefined {
  return err instanceof UpnpFaultError ? err.upnpCode : undefined;
}

/** True when the entry at the mapping's external port points at the same client and port. */
async function isOurs(gw: PortMappingActions, m: UpnpPortMapping, signal: AbortSignal): Promise<boolean> {
  try {
    const entry = await gw.getSpecificPortMappingEntry(m, { signal });
    return entry !== undefined && entry.internalClient === m.internalClient && entry.internalPort === m.internalPort;
  } catch (err) {
    if (signal.aborted) throw err;
    return false;
  }
}
