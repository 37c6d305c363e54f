// `natkit pipe NAME`: `natkit connect`, then standard input goes to the peer and what the
// peer sends comes out on standard output, like netcat over a punched path, through a
// secure session (encrypted, reliable, ordered).
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
    'Once connected, standard input goes to the peer (to every peer in a room) and what arrives is written',
    'to standard output. Exits at the end of input, once the peers acknowledged all of it (at most 10 s).',
    '',
    'Each connection carries a secure session (natkit/session, docs/session.md): Noise XX, encrypted end to end,',
    'the peer proven to hold the key the server named (its fingerprint is in the PUNCH line); data arrives once',
    'and in order, relay and rendezvous server see only ciphertext.',
    '',
    'Examples:',
    '  natkit pipe bob --listen --server rv.example.net > received.txt',
    '  echo hello | natkit pipe alice --to bob --server rv.example.net',
  ].join('\n'),
  run: (ctx) => runPeer(ctx, true),
};
