// Lab runner: a plan of STUN Binding requests (optionally with CHANGE-REQUEST) and
// hairpin probes, run in order on ONE socket (the mapping under test is that socket's),
// printing one JSON QueryReport line. A step that goes unanswered is a result
// (ERR_TIMEOUT), not a failure of the run. Exit 2 on a usage error.
// Usage: stun-query.ts --bind ADDR [--port N] [--rto-ms N] [--transmissions N]
//        [--hairpin-wait-ms N] --plan '[{"kind":"binding","to":{…},"change":{…}},{"kind":"hairpin"}]'
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Endpoint } from '../../../src/net/index.ts';
import { nodeEnv } from '../../../src/net/node/index.ts';
import { StunClient } from '../../../src/stun/index.ts';
import { isNatkitError } from '../../../src/util/index.ts';
import type { QueryReport, QueryStep, StepResult } from '../lib/probes.ts';

const { values } = parseArgs({
  options: {
    bind: { type: 'string', default: '0.0.0.0' },
    port: { type: 'string', default: '0' },
    'rto-ms': { type: 'string', default: '100' },
    transmissions: { type: 'string', default: '3' },
    'hairpin-wait-ms': { type: 'string', default: '300' },
    plan: { type: 'string', default: '[]' },
  },
  strict: true,
});
const plan = JSON.parse(values.plan) as QueryStep[];
const timers = { rtoMs: Number(values['rto-ms']), maxTransmissions: Number(values.transmissions), lastWaitMultiplier: 2 };
const hairpinWaitMs = Number(values['hairpin-wait-ms']);
const first = Array.isArray(plan) ? plan.find((s) => s.kind === 'binding') : undefined;
if (first?.kind !== 'binding') {
  process.stderr.write('--plan: expected a JSON array with at least one binding step\n');
  process.exit(2);
}

const env = nodeEnv();
await using socket = await env.network.bindUdp({ address: values.bind, port: Number(values.port) });
await using client = await StunClient.create({ env, server: first.to, socket, attachHandler: false, rtoCache: false });
/** Non-STUN datagrams (hairpin probes) wait here for their reader. */
let onOther: ((data: Uint8Array, from: Endpoint) => void) | undefined;
socket.onPacket((data, from) => {
  if (!client.receive(data, from)) onOther?.(data, from);
});

async function hairpin(to: Endpoint | undefined): Promise<StepResult> {
  if (to === undefined) return { kind: 'hairpin', to, received: false, from: undefined };
  // Not STUN (first byte 'n', RFC 7983): the client passes it on.
  const token = Buffer.from(`natkit-lab-hairpin ${randomBytes(8).toString('hex')}`);
  const from = await new Promise<Endpoint | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), hairpinWaitMs);
    onOther = (data, sender) => {
      if (!token.equals(data)) return;
      clearTimeout(timer);
      resolve(sender);
    };
    socket.send(token, to);
  });
  onOther = undefined;
  return { kind: 'hairpin', to, received: from !== undefined, from };
}

const steps: StepResult[] = [];
let lastMapped: Endpoint | undefined;
for (const step of plan) {
  if (step.kind === 'hairpin') {
    steps.push(await hairpin(lastMapped));
    continue;
  }
  const base = { kind: 'binding', to: step.to, change: step.change } as const;
  try {
    const r = await client.binding({ to: step.to, timers, ...(step.change && { changeRequest: step.change }) });
    if (r.ok) {
      lastMapped = r.mapped;
      steps.push({ ...base, ok: true, mapped: r.mapped, from: r.from, otherAddress: r.otherAddress, software: r.software, transmissions: r.transmissions });
    } else {
      steps.push({ ...base, ok: false, error: String(r.error.code), message: r.error.reason });
    }
  } catch (err) {
    if (!isNatkitError(err)) throw err;
    steps.push({ ...base, ok: false, error: err.code, message: err.message });
  }
}
const report: QueryReport = { local: socket.local, steps };
process.stdout.write(`${JSON.stringify(report)}\n`);
