// The known-peers file of `natkit connect` and `natkit pipe` (trust on first use): each
// peer name with the public key first seen under it. A later connection under that name
// with another key is refused until `--forget-peer NAME` drops the old one.
import { join } from 'node:path';
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
