// Kernel NAT behaviours for lab routers, as nftables rulesets (shared/lab/NAT-RECIPES.md):
// RFC 4787 §4.1 mapping and §5 filtering, REQ-9 hairpinning, plus "UDP blocked" and a
// stateful firewall without NAT. Each preset states its RFC 4787 truth next to the rules
// that produce it, so a test compares what a client measures with what the router does.

/** RFC 4787 dependence of a mapping (§4.1) or of filtering (§5). */
export type Dependence = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';

/** The behaviours a lab router can have. */
export type NatPreset =
  | 'open'
  | 'firewall'
  | 'full-cone'
  | 'restricted-cone'
  | 'port-restricted-cone'
  | 'address-dependent-mapping'
  | 'symmetric'
  | 'symmetric-sequential'
  | 'udp-blocked';

/** RFC 4787 §4.2 port assignment, as a hole-puncher sees it. */
export type PortAllocation = 'preserving' | 'sequential' | 'random';

/** What a router with a preset does to UDP from its LAN, in RFC 4787 terms. */
export interface NatTruth {
  /** The router translates addresses; false: LAN hosts hold public addresses. */
  readonly natted: boolean;
  /** UDP passes at all. */
  readonly udp: boolean;
  /** RFC 4787 §4.1; undefined without NAT. */
  readonly mapping: Dependence | undefined;
  /** RFC 4787 §5; undefined when nothing is filtered. */
  readonly filtering: Dependence | undefined;
  /**
   * preserving: the external port is the internal one (while free); sequential: each new
   * mapping takes the next port; random: unpredictable (a random or hashed port).
   */
  readonly ports: PortAllocation;
}

/** The lab's truth per preset. */
export const NAT_TRUTH: Readonly<Record<NatPreset, NatTruth>> = {
  open: { natted: false, udp: true, mapping: undefined, filtering: undefined, ports: 'preserving' },
  firewall: { natted: false, udp: true, mapping: undefined, filtering: 'address-and-port-dependent', ports: 'preserving' },
  'full-cone': { natted: true, udp: true, mapping: 'endpoint-independent', filtering: 'endpoint-independent', ports: 'preserving' },
  'restricted-cone': { natted: true, udp: true, mapping: 'endpoint-independent', filtering: 'address-dependent', ports: 'preserving' },
  'port-restricted-cone': { natted: true, udp: true, mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', ports: 'preserving' },
  'address-dependent-mapping': { natted: true, udp: true, mapping: 'address-dependent', filtering: 'address-and-port-dependent', ports: 'random' },
  symmetric: { natted: true, udp: true, mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent', ports: 'random' },
  'symmetric-sequential': { natted: true, udp: true, mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent', ports: 'sequential' },
  'udp-blocked': { natted: true, udp: false, mapping: undefined, filtering: undefined, ports: 'preserving' },
};

/** First port of 'symmetric-sequential' mappings, and how many there are before they wrap. */
export const SEQUENTIAL_PORTS = { first: 40_000, count: 256 } as const;

/** True when the preset's LAN holds public (routed) addresses instead of 100.64.0.0/10 ones. */
export function hasPublicLan(preset: NatPreset): boolean {
  return !NAT_TRUTH[preset].natted;
}

/** Where a router's rules apply. */
export interface RouterRulesOptions {
  readonly preset: NatPreset;
  /** The router's address on its `wan` interface. */
  readonly wanAddress: string;
  /** The LAN behind `lan`, CIDR. */
  readonly lanCidr: string;
  /** RFC 4787 REQ-9: LAN hosts reach each other through the external address. @default false (stock Linux) */
  readonly hairpinning?: boolean;
}

/** The table every preset uses; loading it replaces the previous one atomically. */
export const LAB_TABLE = 'lab';

/**
 * The nftables script for a router: `table ip lab` created, deleted and rebuilt in one
 * transaction, so reloading a router never leaves it half-configured. Interfaces are
 * named `wan` and `lan` in every router namespace.
 */
export function routerRuleset(o: RouterRulesOptions): string {
  const { preset, wanAddress: wan, lanCidr: lan } = o;
  const truth = NAT_TRUTH[preset];
  const hairpin = o.hairpinning ?? false;
  if (hairpin && !truth.natted) throw new Error(`hairpinning needs a NAT, preset ${preset} has none`);
  // fully-random: a fresh random port per 5-tuple, i.e. address-and-port-dependent mapping.
  const random = preset === 'symmetric' ? ' fully-random' : '';
  const pre: string[] = [];
  const post: string[] = [];
  const learn: string[] = [];
  const forward: string[] = [];
  const input: string[] = [];

  if (preset === 'udp-blocked') forward.push('meta l4proto udp drop');
  if (truth.natted) {
    // nft 1.0.6 hands a jhash or numgen result to `snat … : PORT` in host byte order, so
    // "mod 20000 offset 40000" yields byte-swapped ports (40000, 40001 → 16540, 16796).
    // A map's values are typed inet_service and come out right.
    if (preset === 'address-dependent-mapping') {
      // The port is a hash of the destination address and the internal endpoint: one
      // mapping per destination address, whatever its port (NAT-RECIPES "address-dependent
      // mapping"); spread over 20000 ports, byte-swapped, which only makes it look random.
      post.push(`oifname "wan" ip saddr ${lan} meta l4proto udp snat ip to ${wan} : jhash ip daddr . ct original ip saddr . ct original proto-src mod 20000 offset 40000`);
    }
    if (preset === 'symmetric-sequential') {
      // NAT chains see only a connection's first packet: `numgen inc` counts new mappings.
      const { first, count } = SEQUENTIAL_PORTS;
      const ports = Array.from({ length: count }, (_, i) => `${i} : ${first + i}`).join(', ');
      post.push(`oifname "wan" ip saddr ${lan} meta l4proto udp snat ip to ${wan} : numgen inc mod ${count} map { ${ports} }`);
    }
    // Linux masquerade reuses the external port of an existing mapping of the same
    // internal endpoint and keeps the source port when free: endpoint-independent mapping.
    post.push(`oifname "wan" ip saddr ${lan} masquerade${random}`);
    // Runs after SNAT, so `udp sport` is the external port: external port -> internal endpoint.
    learn.push(
      `oifname "wan" ct direction original ct original ip saddr ${lan} update @pmap { udp sport : ct original ip saddr . ct original proto-src }`,
      `oifname "wan" ct direction reply ct reply ip saddr ${lan} update @pmap { udp sport : ct reply ip saddr . ct reply proto-src }`,
    );
  }
  if (preset === 'full-cone') pre.push(`iifname "wan" ip daddr ${wan} dnat ip to udp dport map @pmap`);
  if (preset === 'restricted-cone') {
    learn.push('oifname "wan" meta l4proto udp update @allow { udp sport . ip daddr }');
    pre.push(`iifname "wan" ip daddr ${wan} udp dport . ip saddr @allow dnat ip to udp dport map @pmap`);
  }
  if (hairpin) {
    pre.push(`iifname "lan" ip daddr ${wan} dnat ip to udp dport map @pmap`);
    // Without this SNAT the target answers over the LAN directly and the flow breaks.
    post.unshift(`oifname "lan" ip saddr ${lan} ct status dnat snat ip to ${wan}${random}`);
  }
  if (truth.filtering !== undefined || preset === 'udp-blocked') {
    forward.push('iifname "wan" ct state established,related accept', 'iifname "wan" ct status dnat accept', 'iifname "wan" drop');
    // A home router stays silent on unsolicited WAN traffic (no ICMP port unreachable).
    input.push('iifname "wan" ct state established,related accept', 'iifname "wan" drop');
  }

  const chain = (name: string, hook: string, rules: readonly string[]): string =>
    `  chain ${name} { ${hook}; policy accept;\n${rules.map((r) => `    ${r}\n`).join('')}  }\n`;
  return [
    `table ip ${LAB_TABLE} {}\n`,
    `delete table ip ${LAB_TABLE}\n`,
    `table ip ${LAB_TABLE} {\n`,
    '  map pmap { type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout 120s; }\n',
    '  set allow { type inet_service . ipv4_addr; flags dynamic,timeout; timeout 120s; }\n',
    chain('nat_pre', 'type nat hook prerouting priority dstnat', pre),
    chain('nat_post', 'type nat hook postrouting priority srcnat', post),
    chain('learn', 'type filter hook postrouting priority srcnat + 10', learn),
    chain('fwd_filter', 'type filter hook forward priority filter', forward),
    chain('in_filter', 'type filter hook input priority filter', input),
    '}\n',
  ].join('');
}

const DEPENDENCE: readonly (Dependence | undefined)[] = [undefined, 'endpoint-independent', 'address-dependent', 'address-and-port-dependent'];
const stricter = (a: Dependence | undefined, b: Dependence | undefined): Dependence | undefined =>
  DEPENDENCE.indexOf(a) >= DEPENDENCE.indexOf(b) ? a : b;

/**
 * What a chain of routers (innermost last, e.g. CGN then home router) does as a whole:
 * the most dependent mapping and the most restrictive filtering of any of them, UDP only
 * when every one passes it (NAT-RECIPES "double NAT combined as expected").
 */
export function chainTruth(presets: readonly NatPreset[]): NatTruth {
  const truths = presets.map((p) => NAT_TRUTH[p]);
  const udp = truths.every((t) => t.udp);
  return {
    natted: truths.some((t) => t.natted),
    udp,
    mapping: udp ? truths.reduce<Dependence | undefined>((m, t) => stricter(m, t.mapping), undefined) : undefined,
    filtering: udp ? truths.reduce<Dependence | undefined>((f, t) => stricter(f, t.filtering), undefined) : undefined,
    ports: truths.some((t) => t.ports === 'random') ? 'random' : truths.some((t) => t.ports === 'sequential') ? 'sequential' : 'preserving',
  };
}
