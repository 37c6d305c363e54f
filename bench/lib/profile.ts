// Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time per
// function, inclusive time per function, and self time per source area (natkit files,
// node internals, GC, native), as shares of the busy (non-idle) samples.
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/** One row of a summary. */
export interface ProfileRow {
  readonly name: string;
  /** Share of busy samples, %. */
  readonly pct: number;
  readonly ms: number;
  /** µs per datagram handled, when the count is known. */
  readonly usPerPacket?: number;
}

/** What a profile says. */
export interface ProfileSummary {
  readonly file: string;
  /** Wall time covered, ms. */
  readonly totalMs: number;
  /** The serving window (first to last datagram handled), ms. */
  readonly windowMs: number;
  /** Datagrams the server handled, when known (µs per packet is derived from it). */
  readonly packets?: number;
  /** Non-idle time in the window, ms. */
  readonly busyMs: number;
  readonly self: readonly ProfileRow[];
  readonly inclusive: readonly ProfileRow[];
  readonly areas: readonly ProfileRow[];
}

// '(program)' is not idle: it is native work outside JS (libuv's epoll and recvmsg, the
// syscalls behind send); only '(idle)' is the thread waiting.
const IDLE = new Set(['(idle)']);

/** `fn (src/stun/message.ts:42)`, paths relative to the project. */
function frameName(f: CallFrame, root: string): string {
  const url = f.url.replace(/^file:\/\//, '').replace(root, '');
  const fn = f.functionName === '' ? '(anonymous)' : f.functionName;
  return url === '' ? fn : `${fn} (${url}:${f.lineNumber + 1})`;
}

/** Where a frame's code lives, for the per-area table: a project file, a node: module, GC or native code. */
function area(f: CallFrame, root: string): string {
  if (f.url === '') {
    if (f.functionName === '(garbage collector)') return 'GC';
    if (f.functionName === '(program)') return '(program): libuv, syscalls, native code outside JS';
    if (f.functionName.startsWith('(')) return f.functionName;
    return 'native (C++ builtins: libuv send/recv, Buffer, crypto…)';
  }
  const url = f.url.replace(/^file:\/\//, '').replace(root, '');
  if (url.startsWith('node:')) {
    const m = /^node:(?:internal\/)?([a-z_]+)/.exec(url);
    return `node:${m?.[1] ?? url}`;
  }
  return url;
}

/** True when `name` (a function) with a URL starting `url` is on the stack of node `id`. */
function onStack(id: number, byId: ReadonlyMap<number, ProfileNode>, parent: ReadonlyMap<number, number>, name: string, url: string): boolean {
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const f = byId.get(cur)?.callFrame;
    if (f !== undefined && f.functionName === name && f.url.startsWith(url)) return true;
  }
  return false;
}

/**
 * Summarises a profile; `root` is stripped from file URLs. Only the serving window counts:
 * from the first to the last sample inside node:dgram's onMessage, so start-up (module
 * loading, type stripping) and shutdown are left out. With `packets` (datagrams handled)
 * the rows also say µs per packet.
 */
export function summariseProfile(file: string, root: string, options: { top?: number; packets?: number } = {}): ProfileSummary {
  const top = options.top ?? 25;
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  let first = 0;
  let last = samples.length - 1;
  while (first <= last && !onStack(samples[first]!, byId, parent, 'onMessage', 'node:dgram')) first++;
  while (last >= first && !onStack(samples[last]!, byId, parent, 'onMessage', 'node:dgram')) last--;
  if (first > last) {
    first = 0;
    last = samples.length - 1;
  }
  // Time per node from samples and deltas (more exact than hitCount × mean interval):
  // timeDeltas[i + 1] is the time until the next sample, charged to sample i.
  const nodeMs = new Map<number, number>();
  let windowMs = 0;
  for (let i = first; i <= last; i++) {
    const dt = (deltas[i + 1] ?? 0) / 1000;
    windowMs += dt;
    const id = samples[i]!;
    nodeMs.set(id, (nodeMs.get(id) ?? 0) + dt);
  }

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const areas = new Map<string, number>();
  let busy = 0;
  for (const [id, ms] of nodeMs) {
    const node = byId.get(id);
    if (node === undefined || IDLE.has(node.callFrame.functionName)) continue;
    busy += ms;
    const name = frameName(node.callFrame, root);
    self.set(name, (self.get(name) ?? 0) + ms);
    const a = area(node.callFrame, root);
    areas.set(a, (areas.get(a) ?? 0) + ms);
    // Charge every distinct function on the stack once (recursion not double-counted).
    const seen = new Set<string>();
    // Bounded by the stack depth: parent links form a tree.
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)?.callFrame;
      if (f === undefined || f.functionName === '(root)') continue;
      const fname = frameName(f, root);
      if (seen.has(fname)) continue;
      seen.add(fname);
      inclusive.set(fname, (inclusive.get(fname) ?? 0) + ms);
    }
  }
  const packets = options.packets;
  const rows = (m: Map<string, number>, n: number): ProfileRow[] =>
    [...m.entries()]
      .sort((x, y) => y[1] - x[1])
      .slice(0, n)
      .map(([name, ms]) => ({
        name,
        ms: Math.round(ms * 10) / 10,
        pct: busy > 0 ? Math.round((1000 * ms) / busy) / 10 : 0,
        ...(packets !== undefined && packets > 0 && { usPerPacket: Math.round((ms * 1e5) / packets) / 100 }),
      }));
  return {
    file,
    totalMs: Math.round((p.endTime - p.startTime) / 1000),
    windowMs: Math.round(windowMs),
    busyMs: Math.round(busy),
    ...(packets !== undefined && { packets }),
    self: rows(self, top),
    inclusive: rows(inclusive, top),
    areas: rows(areas, 20),
  };
}

/** Human text of a summary. */
export function formatProfile(s: ProfileSummary): string {
  const per = s.packets !== undefined;
  const table = (title: string, rows: readonly ProfileRow[]): string =>
    [
      `  ${title}`,
      ...rows.map((r) =>
        `    ${r.pct.toFixed(1).padStart(5)} %  ${r.ms.toFixed(0).padStart(6)} ms${per ? `  ${(r.usPerPacket ?? 0).toFixed(2).padStart(6)} µs/pkt` : ''}  ${r.name}`),
    ].join('\n');
  const perPacket = per && s.packets !== undefined && s.packets > 0 ? `, ${((s.busyMs * 1000) / s.packets).toFixed(2)} µs busy per datagram (${s.packets} datagrams)` : '';
  return [
    `profile ${s.file}:`,
    `  serving window ${s.windowMs} ms of ${s.totalMs} ms, ${s.busyMs} ms busy on the main thread${perPacket}; shares are of busy time`,
    table('self time by area', s.areas),
    table('self time by function', s.self),
    table('inclusive time by function', s.inclusive),
  ].join('\n');
}
