// `natkit connect NAME`: register NAME with a natkit serve and reach a peer by name, a
// room's members, or whoever connects to us; print each step and then the path changes.
import type { Command } from '../command.ts';
import { PEER_DETAILS, PEER_OPTIONS, runPeer } from '../peer-session.ts';
import { COMMAND_SUMMARIES } from './summaries.ts';

export const connectCommand: Command = {
  name: 'connect',
  summary: COMMAND_SUMMARIES['connect'],
  usage: 'NAME (--to PEER | --room ROOM | --listen) --server HOST[:PORT] [options]',
  options: PEER_OPTIONS,
  details: [
    ...PEER_DETAILS,
    'Stays connected, printing path changes (relay fallback, direct again), until Ctrl-C.',
    '',
    'Examples:',
    '  natkit connect bob --listen --server rv.example.net --key ~/.natkit/bob.pem',
    '  natkit connect alice --to bob --server rv.example.net --turn-user alice --turn-pass s3cret',
    '  natkit connect carol --room lobby --server rv.example.net --json',
  ].join('\n'),
  run: (ctx) => runPeer(ctx, false),
};
