// Summarises a .cpuprofile written by `npm run bench -- --profile` (or any node --cpu-prof
// run of a UDP server): node bench/profile-summary.ts FILE [--packets N] [--top N]
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { formatProfile, summariseProfile } from './lib/profile.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { packets: { type: 'string' }, top: { type: 'string', default: '25' } },
});
const file = positionals[0];
if (file === undefined || positionals.length > 1) {
  process.stderr.write('usage: node bench/profile-summary.ts FILE.cpuprofile [--packets N] [--top N]\n');
  process.exit(2);
}
const root = fileURLToPath(new URL('../', import.meta.url));
const packets = values.packets === undefined ? undefined : Number(values.packets);
const top = Number(values.top);
process.stdout.write(`${formatProfile(summariseProfile(file, root, { top, ...(packets !== undefined && { packets }) }))}\n`);
