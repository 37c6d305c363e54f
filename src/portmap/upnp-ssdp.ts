// SSDP search for Internet Gateway Devices (UPnP Device Architecture 1.1 §1.3, "Discovery:
// Search"): M-SEARCH requests sent over UDP to 239.255.255.250:1900 and to the gateway's
// own address, and the unicast "HTTP/1.1 200 OK" answers they draw, parsed into typed
// values. Everything goes through env.network and env.clock.
import { endpointKey, type Endpoint, type Env, type PacketSocket, type Timer } from '../net/index.ts';
import { DecodeError, NatkitError, isNatkitError } from '../util/index.ts';
import { Deadline } from './upnp-deadline.ts';
import { field, parseHead } from './upnp-http-parse.ts';

/** UDA 1.1 §1.1.2: the SSDP multicast group and port (IPv4). */
export const SSDP_MULTICAST: Endpoint = { address: '239.255.255.250', port: 1900, family: 4 };
/** The port gateways answer unicast M-SEARCH on. */
export const SSDP_PORT = 1900;

/**
 * Search targets that find a gateway: the IGD device types, v2 first. A device answers a
 * search for any version it supports (UDA 1.1 §1.3.2: newer versions are backward
 * compatible), and the WAN connection services are found in its description, so
 * searching for the services too would only multiply the datagrams (five targets on two
 * destinations were ten per transmission; two are four).
 */
export const IGD_SEARCH_TARGETS: readonly string[] = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
];

/** One search response (UDA 1.1 §1.3.3). */
export interface SsdpResponse {
  /** LOCATION: the URL of the root device description, as sent (checked later). */
  readonly location: string;
  /** ST: the search target this answers. */
  readonly st: string;
  /** USN: unique service name; '' when the device left it out. */
  readonly usn: string;
  /** SERVER: "OS/version UPnP/1.1 product/version", when given. */
  readonly server: string | undefined;
  /** CACHE-CONTROL max-age in seconds, when given. */
  readonly maxAgeS: number | undefined;
  /** BOOTID.UPNP.ORG (UDA 1.1): changes whenever the device reboots; a re-map is due. */
  readonly bootId: number | undefined;
  /** CONFIGID.UPNP.ORG (UDA 1.1): changes with the description. */
  readonly configId: number | undefined;
  /** Who sent it. */
  readonly from: Endpoint;
}

/** Options of buildMSearch(). */
export interface MSearchOptions {
  readonly st: string;
  /** MX: seconds over which devices spread their answers, 1–5 (UDA 1.1 §1.3.2). @default 2 */
  readonly mxS?: number;
}

/**
 * An M-SEARCH request (UDA 1.1 §1.3.2). The multicast form is also sent to the gateway's
 * unicast address: real gateways answer it there (tailscale's portmapper does the same),
 * where the unicast form without MX is not universally understood.
 */
export function buildMSearch(options: MSearchOptions): Uint8Array {
  const mx = options.mxS ?? 2;
  if (!Number.isInteger(mx) || mx < 1 || mx > 5) throw new NatkitError('ERR_INVALID_ARGUMENT', `MX must be a whole number of seconds 1–5 (UDA 1.1 §1.3.2), got ${mx}`);
  if (!/^[\x21-\x7e]+$/.test(options.st)) throw new NatkitError('ERR_INVALID_ARGUMENT', `search target must be printable ASCII without spaces, got ${JSON.stringify(options.st)}`);
  return new TextEncoder().encode(
    `M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: ${mx}\r\nST: ${options.st}\r\n\r\n`,
  );
}

/** A non-negative integer field of at most 31 bits, or undefined when absent or malformed. */
function uint31(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= 0x7fffffff ? n : undefined;
}

/**
 * Parses a search response; throws DecodeError (ERR_SSDP_DECODE) for anything else:
 * garbage, requests (NOTIFY, other control points' M-SEARCH), non-200 answers, or
 * answers without LOCATION or ST.
 */
export function parseSsdpResponse(data: Uint8Array, from: Endpoint): SsdpResponse {
  const head = parseHead(data, 'ERR_SSDP_DECODE', 8192);
  if (head.status === 0) throw new DecodeError(`expected a search response, got a ${head.reason} request`, 0, { code: 'ERR_SSDP_DECODE' });
  if (head.status !== 200) throw new DecodeError(`expected status 200, got ${head.status}`, 0, { code: 'ERR_SSDP_DECODE' });
  const location = field(head.fields, 'location');
  const st = field(head.fields, 'st');
  if (location === undefined || location === '') throw new DecodeError('search response without LOCATION', 0, { code: 'ERR_SSDP_DECODE' });
  if (st === undefined || st === '') throw new DecodeError('search response without ST', 0, { code: 'ERR_SSDP_DECODE' });
  const maxAge = /(?:^|[,\s])max-age\s*=\s*"?(\d{1,10})"?/i.exec(field(head.fields, 'cache-control') ?? '');
  return {
    location,
    st,
    usn: field(head.fields, 'usn') ?? '',
    server: field(head.fields, 'server'),
    maxAgeS: uint31(maxAge?.[1]),
    bootId: uint31(field(head.fields, 'bootid.upnp.org')),
    configId: uint31(field(head.fields, 'configid.upnp.org')),
    from,
  };
}

/** Options of searchSsdp(). */
export interface SsdpSearchOptions {
  /** ST values to search for. @default IGD_SEARCH_TARGETS */
  readonly targets?: readonly string[];
  /** Multicast to 239.255.255.250:1900. The seam's sockets send to a group without joining it; answers come back unicast. @default true */
  readonly multicast?: boolean;
  /** Gateways to search by unicast (port 1900 unless given). @default none */
  readonly unicast?: readonly Endpoint[];
  /** MX in seconds. @default 2 */
  readonly mxS?: number;
  /** How long to listen. @default 3000 (MX plus a second) */
  readonly timeoutMs?: number;
  /** Interval between the transmissions of every request (UDP loses packets). @default 1000 */
  readonly retransmitMs?: number;
  /** Transmissions of every request. @default 2 */
  readonly transmissions?: number;
  /** Local address to bind. @default '0.0.0.0' */
  readonly localAddress?: string;
  /** Most distinct responses kept; more are counted as ignored. @default 64 */
  readonly maxResponses?: number;
  /** Stop listening as soon as this returns true for a response. */
  readonly until?: (response: SsdpResponse) => boolean;
  readonly signal?: AbortSignal;
}

/** What a search heard. */
export interface SsdpSearchResult {
  /** Distinct responses (by sender, LOCATION and ST), in arrival order. */
  readonly responses: readonly SsdpResponse[];
  /** Datagrams that were not search responses, duplicates and those beyond maxResponses. */
  readonly ignored: number;
  /** Datagrams the socket could not send (no multicast route, …). */
  readonly sendErrors: number;
}

/**
 * Searches, listens until the timeout (or `until`), and resolves with what came back —
 * possibly nothing: silence is a result, not an error. Rejects only with ERR_ABORTED,
 * ERR_INVALID_ARGUMENT or the socket's bind error.
 */
export async function searchSsdp(env: Env, options: SsdpSearchOptions = {}): Promise<SsdpSearchResult> {
  const targets = options.targets ?? IGD_SEARCH_TARGETS;
  const requests = targets.map((st) => buildMSearch({ st, ...(options.mxS !== undefined && { mxS: options.mxS }) }));
  const destinations = [
    ...(options.multicast ?? true ? [SSDP_MULTICAST] : []),
    ...(options.unicast ?? []),
  ];
  const transmissions = options.transmissions ?? 2;
  const retransmitMs = options.retransmitMs ?? 1000;
  const maxResponses = options.maxResponses ?? 64;
  using deadline = new Deadline(env.clock, options.timeoutMs ?? 3000, options.signal, 'SSDP search');
  const socket: PacketSocket = await env.network.bindUdp({ address: options.localAddress ?? '0.0.0.0', signal: deadline.signal });
  const responses: SsdpResponse[] = [];
  const seen = new Set<string>();
  let ignored = 0;
  const timers: Timer[] = [];
  let done = false;
  try {
    await new Promise<void>((resolve, reject) => {
      const send = (left: number): void => {
        if (done) return;
        for (const to of destinations) for (const r of requests) socket.send(r, to);
        if (left > 1) timers.push(env.clock.setTimer(retransmitMs, () => send(left - 1)));
      };
      socket.onPacket((data, from) => {
        let response: SsdpResponse;
        try {
          response = parseSsdpResponse(data, from);
        } catch {
          // Only ERR_SSDP_DECODE comes out of the parser (property-tested): not an answer.
          ignored++;
          return;
        }
        const key = `${endpointKey(from)} ${response.location} ${response.st}`;
        if (seen.has(key) || responses.length >= maxResponses) {
          ignored++;
          return;
        }
        seen.add(key);
        responses.push(response);
        if (options.until?.(response) === true) resolve();
      });
      deadline.signal.addEventListener('abort', () => {
        if (isNatkitError(deadline.error, 'ERR_TIMEOUT')) resolve();
        else reject(deadline.error ?? new NatkitError('ERR_ABORTED', 'SSDP search aborted'));
      }, { once: true });
      send(Math.max(1, transmissions));
    });
  } finally {
    done = true;
    for (const t of timers) t.cancel();
    socket.onPacket(undefined);
    await socket.close();
  }
  return { responses, ignored, sendErrors: socket.stats.sendErrors };
}
