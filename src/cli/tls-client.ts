// The TLS client options every command that reaches a server over TLS shares (`natkit stun`,
// `natkit turn`): --ca, --insecure, --servername, and the TlsClientOptions they make.
import type { TlsClientOptions } from '../net/index.ts';
import { fileOption, flag, stringOption, type CommandContext, type OptionSpec } from './command.ts';

/** --ca, --insecure and --servername, for a command's `options`. */
export const TLS_CLIENT_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  ca: { type: 'string', valueName: 'FILE', description: 'TLS: also trust this CA certificate (PEM)' },
  insecure: { type: 'boolean', description: 'TLS: accept any certificate' },
  servername: { type: 'string', valueName: 'NAME', description: 'TLS: name to verify and send as SNI (default: the server name)' },
};

/** TLS settings from those options; the name checked defaults to `target` (SERVER[:PORT]) when it is a host name. */
export async function tlsClientOptions(ctx: CommandContext, target: string): Promise<TlsClientOptions> {
  const ca = await fileOption(ctx, 'ca');
  const servername = stringOption(ctx, 'servername') ?? (/^[\d.:[\]]+$/.test(target) ? undefined : target.replace(/:\d+$/, ''));
  return { rejectUnauthorized: !flag(ctx, 'insecure'), ...(servername !== undefined && { servername }), ...(ca !== undefined && { ca }) };
}
