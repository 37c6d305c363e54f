// The root device description (UDA 1.1 §2.3): walk the device tree — in IGD:1/IGD:2,
// InternetGatewayDevice → WANDevice → WANConnectionDevice — to every WANIPConnection or
// WANPPPConnection service and its controlURL, resolved and checked.
//
// SSRF guard: SSDP is unauthenticated UDP, so any host on the LAN (or a spoofed packet)
// can answer a search and name any URL. Followed blindly, that would let it steer our
// GET and SOAP POSTs to arbitrary hosts and ports — an admin interface, a cloud metadata
// address, a host on the internet (the class of bug of CallStranger, CVE-2020-12695).
// So: LOCATION must be http:// to the very address the answer came from, and every
// control URL must be http:// to that same host (any port: devices such as the D-Link
// DIR-655 serve control on another port than the description).
import type { Endpoint } from '../net/index.ts';
import { NatkitError } from '../util/index.ts';
import { urlEndpoint } from './upnp-http.ts';
import { child, childText, children, parseXml, type XmlElement } from './upnp-xml.ts';

/** WAN connection services natkit can map ports through, most capable first. */
export const WAN_SERVICE_TYPES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
] as const;

export type WanServiceType = (typeof WAN_SERVICE_TYPES)[number];

/** A WAN connection service of a gateway, ready to be controlled. */
export interface WanConnectionService {
  readonly serviceType: WanServiceType;
  /** 2 for WANIPConnection:2 (AddAnyPortMapping, IGD:2), else 1. */
  readonly version: 1 | 2;
  readonly controlUrl: URL;
  readonly serviceId: string | undefined;
  /** deviceType of the device holding the service (a WANConnectionDevice, normally). */
  readonly deviceType: string;
}

/** What a root device description offers natkit. */
export interface DeviceDescription {
  readonly deviceType: string;
  readonly friendlyName: string | undefined;
  readonly manufacturer: string | undefined;
  readonly modelName: string | undefined;
  readonly udn: string | undefined;
  /** Usable WAN connection services: WANIPConnection:2, then :1, then WANPPPConnection:1; document order within a type. */
  readonly services: readonly WanConnectionService[];
  /** WAN connection services skipped, with why (bad or foreign control URL). */
  readonly rejected: readonly { readonly serviceType: string; readonly controlUrl: string; readonly why: string }[];
}

/** Deepest device nesting followed (IGD needs 3). */
const MAX_DEVICE_DEPTH = 8;

/**
 * Checks a LOCATION against the guard above: an http: URL whose host is an IP literal
 * and, when `from` is given, the address that sent the SSDP answer. Throws ERR_PROTOCOL.
 */
export function checkLocation(location: string, from?: Endpoint): URL {
  let url: URL;
  try {
    url = new URL(location);
    urlEndpoint(url);
  } catch (err) {
    throw new NatkitError('ERR_PROTOCOL', `LOCATION must be an http:// URL with an IP address, got ${JSON.stringify(location.slice(0, 200))}`, { cause: err });
  }
  if (from !== undefined && urlEndpoint(url).address !== from.address) {
    throw new NatkitError('ERR_PROTOCOL', `LOCATION ${url.href} names another host than the SSDP answer came from (${from.address}); refused (SSRF guard)`);
  }
  return url;
}

/**
 * Resolves a controlURL (UDA 1.1 §2.3: relative to URLBase, or to the description's own
 * URL when URLBase is absent — UDA 2.0 drops URLBase altogether). A URLBase naming
 * another host than LOCATION is ignored: real devices put stale or loopback addresses
 * there (the DIR-655 fixture says http://127.0.0.1). Throws ERR_PROTOCOL.
 */
export function resolveControlUrl(raw: string, location: URL, urlBase?: string): URL {
  let base = location;
  if (urlBase !== undefined && urlBase !== '') {
    try {
      const u = new URL(urlBase);
      if (u.protocol === 'http:' && u.hostname === location.hostname) base = u;
    } catch {
      // unusable URLBase: LOCATION stands
    }
  }
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch (err) {
    throw new NatkitError('ERR_PROTOCOL', `controlURL ${JSON.stringify(raw.slice(0, 200))} is not a URL`, { cause: err });
  }
  if (url.protocol !== 'http:') throw new NatkitError('ERR_PROTOCOL', `controlURL must be http://, got ${url.href}`);
  if (url.hostname !== location.hostname) {
    throw new NatkitError('ERR_PROTOCOL', `controlURL ${url.href} is on another host than the description (${location.hostname}); refused (SSRF guard)`);
  }
  if (url.username !== '' || url.password !== '') throw new NatkitError('ERR_PROTOCOL', `controlURL ${url.href} carries credentials`);
  return url;
}

const isWanServiceType = (t: string): t is WanServiceType => (WAN_SERVICE_TYPES as readonly string[]).includes(t);

/**
 * Parses a root device description fetched from `location`. Throws ERR_XML (not XML, or
 * hostile) or ERR_PROTOCOL (no <root><device>); a description without WAN connection
 * services parses, with `services` empty.
 */
export function parseDeviceDescription(xml: string, location: URL): DeviceDescription {
  const root = parseXml(xml);
  if (root.name !== 'root') throw new NatkitError('ERR_PROTOCOL', `expected a <root> device description, got <${root.name}>`);
  const device = child(root, 'device');
  if (device === undefined) throw new NatkitError('ERR_PROTOCOL', 'device description has no <device>');
  const urlBase = childText(root, 'URLBase');
  const found: WanConnectionService[] = [];
  const rejected: { serviceType: string; controlUrl: string; why: string }[] = [];
  const walk = (d: XmlElement, depth: number): void => {
    const deviceType = childText(d, 'deviceType') ?? '';
    for (const list of children(d, 'serviceList')) {
      for (const s of children(list, 'service')) {
        const serviceType = childText(s, 'serviceType') ?? '';
        if (!isWanServiceType(serviceType)) continue;
        const raw = childText(s, 'controlURL') ?? '';
        try {
          if (raw === '') throw new NatkitError('ERR_PROTOCOL', 'no controlURL');
          found.push({
            serviceType,
            version: serviceType.endsWith(':2') ? 2 : 1,
            controlUrl: resolveControlUrl(raw, location, urlBase),
            serviceId: childText(s, 'serviceId'),
            deviceType,
          });
        } catch (err) {
          rejected.push({ serviceType, controlUrl: raw, why: err instanceof Error ? err.message : String(err) });
        }
      }
    }
    // Embedded devices (UDA 1.1 §2.3 deviceList); real gateways sometimes put the WAN
    // services straight into the root device, so every level is searched.
    if (depth >= MAX_DEVICE_DEPTH) return;
    for (const list of children(d, 'deviceList')) for (const sub of children(list, 'device')) walk(sub, depth + 1);
  };
  walk(device, 1);
  const rank = (s: WanConnectionService): number => WAN_SERVICE_TYPES.indexOf(s.serviceType);
  return {
    deviceType: childText(device, 'deviceType') ?? '',
    friendlyName: childText(device, 'friendlyName'),
    manufacturer: childText(device, 'manufacturer'),
    modelName: childText(device, 'modelName'),
    udn: childText(device, 'UDN'),
    services: found.map((s, i) => ({ s, i })).sort((a, b) => rank(a.s) - rank(b.s) || a.i - b.i).map(({ s }) => s),
    rejected,
  };
}
