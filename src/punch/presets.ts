// The NAT presets the punch matrix, `natkit demo` and the lab speak of, as chains of
// simulated routers (RFC 4787 knobs, outermost first), and the outcome the strategy must
// reach for each pair (docs/punch.md, "The NAT matrix"). Data: one copy, read by the
// strategy's unit test, the simulated matrix and the demo.
import { NAT_PRESETS, type NatOptions, type SimHost, type SimRouter, type World } from '../net/sim/index.ts';
import { NatkitError } from '../util/index.ts';
import type { PunchOutcome } from './strategy.ts';

/** The presets of the matrix. */
export const PRESETS = ['open', 'full-cone', 'restricted', 'port-restricted', 'symmetric-seq', 'symmetric-random', 'double-nat', 'udp-blocked', 'firewall'] as const;
export type Preset = (typeof PRESETS)[number];

// D direct, P direct after port prediction, B direct by the birthday method, R relay.
// Rows and columns in PRESETS order; symmetric.
export const EXPECTED_TABLE = `
                  open full restr port seq rand double blocked firewall
  open             D    D    D     D    D   D    D      R       D
  full-cone        D    D    D     D    D   D    D      R       D
  restricted       D    D    D     D    D   D    D      R       D
  port-restricted  D    D    D     D    P   B    D      R       D
  symmetric-seq    D    D    D     P    P   R    P      R       P
  symmetric-random D    D    D     B    R   R    B      R       B
  double-nat       D    D    D     D    P   B    D      R       D
  udp-blocked      R    R    R     R    R   R    R      R       R
  firewall         D    D    D     D    P   B    D      R       D
`;

const LETTERS: Readonly<Record<string, PunchOutcome>> = { D: 'direct', P: 'direct-predicted', B: 'direct-birthday', R: 'relay' };

/** A table in EXPECTED_TABLE's layout as "row|column" → outcome; ERR_INVALID_ARGUMENT when a row or cell is not as expected. */
export function parseTable(text: string): Map<string, PunchOutcome> {
  const rows = text.trim().split('\n').slice(1).map((line) => line.trim().split(/\s+/));
  if (rows.length !== PRESETS.length) throw new NatkitError('ERR_INVALID_ARGUMENT', `outcome table: expected ${PRESETS.length} rows, got ${rows.length}`);
  const out = new Map<string, PunchOutcome>();
  for (const [i, [name, ...cells]] of rows.entries()) {
    if (name !== PRESETS[i] || cells.length !== PRESETS.length) {
      throw new NatkitError('ERR_INVALID_ARGUMENT', `outcome table row ${i + 1}: expected ${PRESETS[i]} and ${PRESETS.length} cells, got ${name ?? ''} and ${cells.length}`);
    }
    for (const [j, cell] of cells.entries()) {
      const outcome = LETTERS[cell];
      if (outcome === undefined) throw new NatkitError('ERR_INVALID_ARGUMENT', `outcome table ${name} × ${PRESETS[j]}: expected D, P, B or R, got "${cell}"`);
      out.set(`${name}|${PRESETS[j]}`, outcome);
    }
  }
  return out;
}

const EXPECTED = parseTable(EXPECTED_TABLE);

/** The outcome the strategy reaches for a peer behind `a` and one behind `b`. */
export function expectedOutcome(a: Preset, b: Preset): PunchOutcome {
  return EXPECTED.get(`${a}|${b}`)!;
}

/** True when `name` is one of PRESETS. */
export function isPreset(name: string): name is Preset {
  return (PRESETS as readonly string[]).includes(name);
}

const EI = 'endpoint-independent';
const APD = 'address-and-port-dependent';

/** Routers from the internet inward for each preset. */
export const PRESET_ROUTERS: Readonly<Record<Preset, readonly NatOptions[]>> = {
  'open': [NAT_PRESETS['open-internet']],
  'full-cone': [NAT_PRESETS['full-cone']],
  'restricted': [NAT_PRESETS['restricted-cone']],
  'port-restricted': [NAT_PRESETS['port-restricted-cone']],
  'symmetric-seq': [{ ...NAT_PRESETS.symmetric, portAllocation: { kind: 'sequential', step: 1 } }],
  'symmetric-random': [NAT_PRESETS.symmetric],
  // A carrier-grade NAT (RFC 6888: EIM, random ports, hairpinning) before a home router.
  'double-nat': [{ kind: 'nat', mapping: EI, filtering: APD, portAllocation: { kind: 'random' }, hairpinning: true }, NAT_PRESETS['port-restricted-cone']],
  'udp-blocked': [NAT_PRESETS['udp-blocked']],
  'firewall': [NAT_PRESETS['symmetric-udp-firewall']],
};

/** A host called `name` behind `preset`'s routers in `world`; 10 ms each way on the outermost router's WAN link (40 ms between two such peers and back). */
export function presetHost(world: World, name: string, preset: Preset): SimHost {
  let site: World | SimRouter = world;
  for (const [i, nat] of PRESET_ROUTERS[preset].entries()) site = site.addRouter({ name: `${name}-r${i}`, nat, ipv6: 'off', ...(i === 0 && { link: { delayMs: 10 } }) });
  return site.addHost({ name, ipv6: false });
}
