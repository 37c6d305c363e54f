// Every `natkit` command, in the order --help lists them.
import type { Command } from '../command.ts';
import { checkCommand } from './check.ts';
import { connectCommand } from './connect.ts';
import { demoCommand } from './demo.ts';
import { mapCommand } from './map.ts';
import { pipeCommand } from './pipe.ts';
import { serveCommand } from './serve.ts';
import { stunServerCommand } from './stun-server.ts';
import { stunCommand } from './stun.ts';
import { turnServerCommand } from './turn-server.ts';
import { turnCommand } from './turn.ts';

export const commands: readonly Command[] = [checkCommand, connectCommand, demoCommand, mapCommand, pipeCommand, serveCommand, stunCommand, stunServerCommand, turnCommand, turnServerCommand];
