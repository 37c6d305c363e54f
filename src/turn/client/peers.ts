// The client's permissions and channels, RFC 8656 §9 (a permission per peer IP address,
// 300 s, refreshed by CreatePermission), §10.1 (Send indications), §11 (a channel per
// peer transport address, 600 s, refreshed by ChannelBind), §12 (ChannelData). Requests
// go out through the core, which signs them and reports the outcome back here.
import { endpointKey, type Endpoint, type Random } from '../../net/index.ts';
import { StunClass, attr, encodeMessage, type AttrEntry } from '../../stun/index.ts';
import { CHANNEL_NUMBER, DATA_ATTRIBUTE, XOR_PEER_ADDRESS } from '../attributes.ts';
import { encodeChannelData } from '../channel-data.ts';
import { CHANNEL_LIFETIME_S, MAX_CHANNEL, MIN_CHANNEL, PERMISSION_LIFETIME_S, SEND } from '../constants.ts';

/** A CreatePermission or ChannelBind the table asks for. */
export type PeerRequest =
  | { readonly kind: 'permission'; readonly peer: Endpoint }
  | { readonly kind: 'channel'; readonly peer: Endpoint; readonly channel: number };

/** The counters the table keeps (a part of the core's). */
export interface PeerStats {
  indicationsSent: number;
  channelDataSent: number;
  channelsBound: number;
  dropped: number;
}

/** What the table needs from the core. */
export interface PeerTableOptions {
  readonly random: Random;
  readonly framing: 'udp' | 'stream';
  readonly channelAfterPackets: number;
  readonly maxQueuedPerPeer: number;
  readonly stats: PeerStats;
  /** Issues a signed request; its outcome comes back through granted() or refused(). */
  readonly request: (purpose: PeerRequest, attributes: AttrEntry[]) => void;
  /** Sends bytes to the server. */
  readonly transmit: (data: Uint8Array) => void;
}

/** RFC 8656 §9: refreshing a permission every 4 minutes is customary (it lasts 300 s). */
const PERMISSION_REFRESH_MS = (PERMISSION_LIFETIME_S - 60) * 1000;
/** A channel lasts 600 s (§11); refreshed a minute before. */
const CHANNEL_REFRESH_MS = (CHANNEL_LIFETIME_S - 60) * 1000;
/** After the server refused a permission, datagrams to that address are dropped this long before asking again. */
const REFUSED_RETRY_MS = 30_000;
/** Peer addresses and peer endpoints held at most (a server grants 256 permissions by default; 4096 channel numbers exist). */
const MAX_PERMISSIONS = 256;
const MAX_FLOWS = MAX_CHANNEL - MIN_CHANNEL + 1;
/** Largest datagram a Send indication carries: the 16-bit message length less XOR-PEER-ADDRESS (IPv6) and DATA's header. */
const MAX_DATA = 0xffff - 24 - 4 - 3;

interface Permission {
  state: 'pending' | 'active' | 'refused';
  /** The endpoint CreatePermission names (the server looks at its address only). */
  readonly peer: Endpoint;
  /** Active: when to refresh; refused: when to ask again. */
  due: number;
  refreshing: boolean;
  /** Datagrams waiting for the permission. */
  queue: { readonly data: Uint8Array; readonly peer: Endpoint }[];
}

/** Traffic to one peer endpoint and its channel. */
interface Flow {
  readonly peer: Endpoint;
  sent: number;
  channel: number | undefined;
  bound: boolean;
  refreshAt: number;
  refreshing: boolean;
  /** The server refused a channel, or numbers ran out: indications only. */
  noChannel: boolean;
}

/** Permissions by peer address, flows by peer endpoint, flows by channel number. */
export class PeerTable {
  private readonly o: PeerTableOptions;
  private readonly permissions = new Map<string, Permission>();
  private readonly flows = new Map<string, Flow>();
  private readonly channels = new Map<number, Flow>();
  private nextChannel = MIN_CHANNEL;

  constructor(options: PeerTableOptions) {
    this.o = options;
  }

  /** Relays now, or queues until the permission exists; false when dropped. */
  send(data: Uint8Array, peer: Endpoint, now: number): boolean {
    let p = this.permissions.get(peer.address);
    const stale = p?.state === 'refused' && now >= p.due;
    if (data.length > MAX_DATA || p?.state === 'refused' && !stale || (p === undefined && this.permissions.size >= MAX_PERMISSIONS)) {
      this.o.stats.dropped++;
      return false;
    }
    if (p === undefined || stale) {
      p = { state: 'pending', peer, due: 0, refreshing: false, queue: [] };
      this.permissions.set(peer.address, p);
      this.o.request({ kind: 'permission', peer }, [attr(XOR_PEER_ADDRESS, peer)]);
    }
    if (p.state === 'active') return this.relay(data, peer);
    if (p.queue.length >= this.o.maxQueuedPerPeer) {
      this.o.stats.dropped++;
      return false;
    }
    p.queue.push({ data: Uint8Array.from(data), peer });
    return true;
  }

  /** A CreatePermission or ChannelBind succeeded at `now`. */
  granted(request: PeerRequest, now: number): void {
    if (request.kind === 'permission') {
      const p = this.permissions.get(request.peer.address);
      if (p === undefined) return;
      p.state = 'active';
      p.due = now + PERMISSION_REFRESH_MS;
      p.refreshing = false;
      const queued = p.queue;
      p.queue = [];
      for (const q of queued) this.relay(q.data, q.peer);
      return;
    }
    const flow = this.channels.get(request.channel);
    if (flow === undefined) return;
    this.o.stats.channelsBound++;
    flow.bound = true;
    flow.refreshAt = now + CHANNEL_REFRESH_MS;
    flow.refreshing = false;
  }

  /** A CreatePermission or ChannelBind failed: no relaying to that address for a while, or no channel for that peer. */
  refused(request: PeerRequest, now: number): void {
    if (request.kind === 'permission') {
      const p = this.permissions.get(request.peer.address);
      if (p === undefined) return;
      this.o.stats.dropped += p.queue.length;
      this.permissions.set(request.peer.address, { state: 'refused', peer: p.peer, due: now + REFUSED_RETRY_MS, refreshing: false, queue: [] });
      return;
    }
    const flow = this.channels.get(request.channel);
    if (flow === undefined) return;
    this.channels.delete(request.channel);
    flow.channel = undefined;
    flow.bound = false;
    flow.noChannel = true;
  }

  /** The earliest permission or channel refresh. */
  nextTimerAt(): number | undefined {
    let at: number | undefined;
    for (const p of this.permissions.values()) if (p.state === 'active' && !p.refreshing && (at === undefined || p.due < at)) at = p.due;
    for (const f of this.channels.values()) if (f.bound && !f.refreshing && (at === undefined || f.refreshAt < at)) at = f.refreshAt;
    return at;
  }

  /** Refreshes what is due: everything made lives until close() (RFC 8656 §9, §11). */
  handleTimer(now: number): void {
    for (const p of this.permissions.values()) {
      if (p.state !== 'active' || p.refreshing || now < p.due) continue;
      p.refreshing = true;
      this.o.request({ kind: 'permission', peer: p.peer }, [attr(XOR_PEER_ADDRESS, p.peer)]);
    }
    for (const f of this.channels.values()) {
      if (!f.bound || f.refreshing || now < f.refreshAt) continue;
      f.refreshing = true;
      this.bind(f);
    }
  }

  /** The peer bound to a channel; pending ones count, as ChannelData may overtake the success response. */
  channelPeer(channel: number): Endpoint | undefined {
    return this.channels.get(channel)?.peer;
  }

  /** True when a permission for the peer's address is installed. */
  isPermitted(peer: Endpoint): boolean {
    return this.permissions.get(peer.address)?.state === 'active';
  }

  /** Forgets everything, counting queued datagrams as dropped. */
  clear(): void {
    for (const p of this.permissions.values()) this.o.stats.dropped += p.queue.length;
    this.permissions.clear();
    this.flows.clear();
    this.channels.clear();
  }

  /** Sends through the permission: ChannelData when bound, else a Send indication (then maybe a ChannelBind). */
  private relay(data: Uint8Array, peer: Endpoint): boolean {
    const key = endpointKey(peer);
    let flow = this.flows.get(key);
    if (flow === undefined && this.flows.size < MAX_FLOWS) {
      flow = { peer, sent: 0, channel: undefined, bound: false, refreshAt: 0, refreshing: false, noChannel: false };
      this.flows.set(key, flow);
    }
    if (flow?.bound === true && flow.channel !== undefined) {
      this.o.stats.channelDataSent++;
      this.o.transmit(encodeChannelData({ channel: flow.channel, data }, this.o.framing));
      return true;
    }
    this.o.stats.indicationsSent++;
    this.o.transmit(encodeMessage({
      method: SEND, cls: StunClass.INDICATION, transactionId: this.o.random.bytes(12),
      attributes: [attr(XOR_PEER_ADDRESS, peer), attr(DATA_ATTRIBUTE, data)],
    }));
    if (flow === undefined) return true;
    flow.sent++;
    if (flow.channel === undefined && !flow.noChannel && flow.sent >= this.o.channelAfterPackets) {
      if (this.nextChannel > MAX_CHANNEL) {
        flow.noChannel = true;
      } else {
        flow.channel = this.nextChannel++;
        this.channels.set(flow.channel, flow);
        this.bind(flow);
      }
    }
    return true;
  }

  private bind(flow: Flow): void {
    if (flow.channel === undefined) return;
    this.o.request({ kind: 'channel', peer: flow.peer, channel: flow.channel }, [attr(CHANNEL_NUMBER, flow.channel), attr(XOR_PEER_ADDRESS, flow.peer)]);
  }
}
