// `natkit pipe NAME`: `natkit connect`, then standard input goes to the peer and what the
// peer sends comes out on standard output, like netcat over a punched path.
import type { Command } from '../command.ts';
import { PEER_DETAILS, PEER_OPTIONS, runPeer } from '../peer-session.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

export const pipeCommand: Command = {
  name: 'pipe',
  summary: COMMAND_SUMMARIES['pipe'],
  usage: 'NAME (--to PEER | --room ROOM | --listen) --server HOST[:PORT] [options]',
  options: PEER_OPTIONS,
  details: [
    ...PEER_DETAILS,
    'Once connected, standard input goes out in datagrams of at most 1024 bytes (to every peer in a room)',
    'and what arrives is written to standard output. Exits at the end of input.',
    '',
    'Delivery is best effort: datagrams may be lost, reordered or duplicated, and nothing is encrypted.',
    'A reliable, encrypted session is the next layer\'s job (natkit/session).',
    '',
    'Examples:',
    '  natkit pipe bob --listen --server rv.example.net > received.txt',
    '  echo hello | natkit pipe alice --to bob --server rv.example.net',
  ].join('\n'),
  run: (ctx) => runPeer(ctx, true),
};
