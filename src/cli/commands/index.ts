// Every `natkit` command, in the order --help lists them.
import type { Command } from '../command.ts';
import { checkCommand } from './check.ts';
import { mapCommand } from './map.ts';
import { serveCommand } from './serve.ts';
import { stunServerCommand } from './stun-server.ts';
import { stunCommand } from './stun.ts';
import { turnServerCommand } from './turn-server.ts';
import { turnCommand } from './turn.ts';

export const commands: readonly Command[] = [checkCommand, mapCommand, serveCommand, stunCommand, stunServerCommand, turnCommand, turnServerCommand];
