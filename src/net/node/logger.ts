// Loggers for the real environment: silent (the default) and JSON lines on stderr.
import type { Logger } from '../types.ts';

/** A logger that drops everything (the default). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
};

/** Logger levels, least to most severe. */
export type LogLevel = 'debug' | 'info' | 'warn';

const LEVEL_RANK: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2 };

/** JSON.stringify replacer for values JSON cannot hold: bigint, errors, bytes. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) };
  }
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex');
  return value;
}

/**
 * A logger writing one JSON object per line to stderr (`{"time","level","msg",...fields}`),
 * dropping records below `level`.
 */
export function consoleLogger(level: LogLevel = 'info', write: (line: string) => void = (l) => void process.stderr.write(l)): Logger {
  const emit = (at: LogLevel, msg: string, fields?: Readonly<Record<string, unknown>>): void => {
    if (LEVEL_RANK[at] < LEVEL_RANK[level]) return;
    const record = { time: new Date().toISOString(), level: at, msg, ...fields };
    let line: string;
    try {
      line = JSON.stringify(record, jsonSafe);
    } catch (err) {
      // Circular fields: keep the message, say why the fields are missing.
      line = JSON.stringify({ time: record.time, level: at, msg, fieldsError: String(err) });
    }
    write(`${line}\n`);
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
  };
}
