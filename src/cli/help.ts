// --help text for the command list and for each command.
import type { Command } from './command.ts';

/** `natkit --help`. */
export function programHelp(commands: readonly Pick<Command, 'name' | 'summary'>[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'natkit — find your way through NATs: STUN, NAT discovery, port mapping, TURN, hole punching',
    '',
    'Usage: natkit COMMAND [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `natkit COMMAND --help` for a command\'s options. Exit codes: 0 ok, 1 failure, 2 usage error.',
    '',
  ].join('\n');
}

/** `natkit NAME --help`. */
export function commandHelp(c: Command): string {
  const rows = Object.entries(c.options).map(([name, o]) => {
    const negatable = o.type === 'boolean' && o.default === true ? '[no-]' : '';
    const left = `${o.short !== undefined ? `-${o.short}, ` : '    '}--${negatable}${name}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`;
    const extra = [o.default !== undefined ? `default: ${String(o.default)}` : '', o.env !== undefined ? `env: ${o.env}` : '']
      .filter((s) => s !== '')
      .join('; ');
    return [left, `${o.description}${extra === '' ? '' : ` (${extra})`}`] as const;
  });
  rows.push(['    --help', 'show this help']);
  const width = Math.max(...rows.map(([l]) => l.length));
  return [
    `natkit ${c.name} — ${c.summary}`,
    '',
    `Usage: natkit ${c.name} ${c.usage}`,
    '',
    'Options:',
    ...rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`),
    ...(c.details !== undefined ? ['', c.details.trimEnd()] : []),
    '',
  ].join('\n');
}
