// The Prometheus text exposition format (version 0.0.4): metric families rendered as
// `# HELP`, `# TYPE` and one line per sample. Callers pass label values from fixed sets
// only (no names or addresses), so the series count stays bounded.

/** A Prometheus metric type natkit exposes. */
export type MetricType = 'gauge' | 'counter';

/** One metric family: its samples as [labels, value]. */
export interface MetricFamily {
  /** Name after the prefix, e.g. 'allocations'. */
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly samples: readonly (readonly [Readonly<Record<string, string>>, number])[];
}

/** A family of one unlabelled sample. */
export function metric(name: string, type: MetricType, help: string, value: number): MetricFamily {
  return { name, type, help, samples: [[{}, value]] };
}

/** Renders `families`, each name after `prefix` (e.g. 'natkit_turn_'). */
export function renderFamilies(prefix: string, families: readonly MetricFamily[]): string {
  let out = '';
  for (const f of families) {
    const name = prefix + f.name;
    out += `# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n`;
    for (const [labels, value] of f.samples) {
      const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',');
      out += `${name}${pairs === '' ? '' : `{${pairs}}`} ${value}\n`;
    }
  }
  return out;
}

/** `idleClosed` → `idle-closed`: counter field names as label values. */
export function kebab(text: string): string {
  return text.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `connections` (gauge: open now) and `connections_total{event}` (counter) from a server's stream counters. */
export function connectionFamilies<E extends string>(streams: Readonly<Record<E | 'active', number>>, events: readonly E[]): MetricFamily[] {
  return [
    metric('connections', 'gauge', 'Open TCP and TLS connections.', streams.active),
    { name: 'connections_total', type: 'counter', help: 'TCP and TLS connection events.', samples: events.map((event) => [{ event: kebab(event) }, streams[event]]) },
  ];
}
