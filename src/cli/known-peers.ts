// The known-peers file of `natkit connect` and `natkit pipe` (trust on first use): each
// peer name with the public key first seen under it. A later connection under that name
// with another key is refused until `--forget-peer NAME` drops the old one.
import { join } from 'node:path';
import { keyFingerprint } from '../punch/index.ts';
import { NatkitError } from '../util/index.ts';
import { readStateJson, writeStateJson } from './state-dir.ts';

/** One pinned peer. */
export interface KnownPeer {
  /** Its raw Ed25519 public key, hex. */
  readonly publicKey: string;
  /** Wall-clock time of the first connection, ISO 8601. */
  readonly firstSeen: string;
}

interface KnownPeersFile {
  readonly version: 1;
  readonly peers: Readonly<Record<string, KnownPeer>>;
}

/** What check() found: a new name (now pinned), the pinned key, or another key than the pinned one. */
export type PinResult =
  | { readonly kind: 'pinned' }
  | { readonly kind: 'known'; readonly peer: KnownPeer }
  | { readonly kind: 'mismatch'; readonly peer: KnownPeer };

/** known-peers.json in `dir`; updates are serialised within the process. */
export class KnownPeers {
  readonly path: string;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(dir: string) {
    this.path = join(dir, 'known-peers.json');
  }

  /** Compares `publicKey` with the key pinned for `name`; pins it when there is none. */
  check(name: string, publicKey: Uint8Array, now: Date): Promise<PinResult> {
    return this.serial(async () => {
      const peers = await this.read();
      const hex = Buffer.from(publicKey).toString('hex');
      const peer = Object.hasOwn(peers, name) ? peers[name] : undefined;
      if (peer !== undefined) return { kind: peer.publicKey === hex ? 'known' : 'mismatch', peer };
      await this.write({ ...peers, [name]: { publicKey: hex, firstSeen: now.toISOString() } });
      return { kind: 'pinned' };
    });
  }

  /** Drops the key pinned for `name`; the entry it dropped, if any. */
  forget(name: string): Promise<KnownPeer | undefined> {
    return this.serial(async () => {
      const peers = await this.read();
      if (!Object.hasOwn(peers, name)) return undefined;
      const dropped = peers[name];
      delete peers[name];
      await this.write(peers);
      return dropped;
    });
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async read(): Promise<Record<string, KnownPeer>> {
    const data = await readStateJson(this.path);
    if (data === undefined) return {};
    const file = typeof data === 'object' && data !== null ? (data as Partial<KnownPeersFile>) : undefined;
    if (file?.version !== 1 || typeof file.peers !== 'object' || file.peers === null) {
      throw new NatkitError('ERR_CONFIG', `${this.path}: expected {"version": 1, "peers": {…}}`);
    }
    return { ...file.peers };
  }

  private write(peers: Record<string, KnownPeer>): Promise<void> {
    const file: KnownPeersFile = { version: 1, peers };
    return writeStateJson(this.path, file);
  }
}

/** check() as a person reads it: trusted or not, and one line saying why. */
export interface PinVerdict {
  readonly trusted: boolean;
  readonly kind: PinResult['kind'] | 'error';
  /** "pinned bob key 8e2e:… (first use)", "known bob key … (pinned 2026-…)", or why it is refused. */
  readonly note: string;
  /** When the pinned key was first seen (known, mismatch). */
  readonly firstSeen?: string;
}

/** Checks `name`'s key against `known` (pinning it on first use); never rejects: a failure refuses. */
export async function pinVerdict(known: KnownPeers, name: string, publicKey: Uint8Array, now: Date): Promise<PinVerdict> {
  const fingerprint = keyFingerprint(publicKey);
  try {
    const pin = await known.check(name, publicKey, now);
    if (pin.kind === 'pinned') return { trusted: true, kind: 'pinned', note: `pinned ${name} key ${fingerprint} (first use)` };
    const { firstSeen } = pin.peer;
    if (pin.kind === 'known') return { trusted: true, kind: 'known', note: `known ${name} key ${fingerprint} (pinned ${firstSeen})`, firstSeen };
    const pinned = keyFingerprint(Buffer.from(pin.peer.publicKey, 'hex'));
    return {
      trusted: false, kind: 'mismatch', firstSeen,
      note: `${name} presented key ${fingerprint}, but key ${pinned} is pinned for it (first seen ${firstSeen}); refused. If ${name} changed its key, \`--forget-peer ${name}\` drops the old one (${known.path})`,
    };
  } catch (err) {
    return { trusted: false, kind: 'error', note: `${name}: cannot check its key (${err instanceof Error ? err.message : String(err)}); refused` };
  }
}
