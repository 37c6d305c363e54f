// Every `natkit` command, in the order --help lists them. Each is imported when it runs,
// not before: `natkit check` does not load TURN, rendezvous or the simulated world, which
// keeps the binary's start-up near what one command needs.
import type { Command, LazyCommand } from '../command.ts';
import { COMMAND_SUMMARIES, type CommandName } from './summaries.ts';

const lazy = (name: CommandName, load: () => Promise<Command>): LazyCommand => ({ name, summary: COMMAND_SUMMARIES[name], load });

export const commands: readonly LazyCommand[] = [
  lazy('chat', async () => (await import('./chat.ts')).chatCommand),
  lazy('check', async () => (await import('./check.ts')).checkCommand),
  lazy('connect', async () => (await import('./connect.ts')).connectCommand),
  lazy('demo', async () => (await import('./demo.ts')).demoCommand),
  lazy('map', async () => (await import('./map.ts')).mapCommand),
  lazy('pipe', async () => (await import('./pipe.ts')).pipeCommand),
  lazy('serve', async () => (await import('./serve.ts')).serveCommand),
  lazy('stun', async () => (await import('./stun.ts')).stunCommand),
  lazy('stun-server', async () => (await import('./stun-server.ts')).stunServerCommand),
  lazy('turn', async () => (await import('./turn.ts')).turnCommand),
  lazy('turn-server', async () => (await import('./turn-server.ts')).turnServerCommand),
];
