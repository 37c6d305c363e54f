// natkit: the public API with Node defaults. Areas are also importable alone
// (natkit/net, natkit/stun); this entry adds the real-socket environment (nodeEnv) and
// openPortMapper(), a PortMapper with this host's gateway and exit-signal cleanup.
export * from './util/index.ts';
export * from './net/index.ts';
export {
  NodeNetwork, consoleLogger, cryptoRandom, localAddressToward, nodeEnv, readRouteTables, resolveEndpoint, silentLogger, systemClock,
  type HostLookup, type LogLevel, type NodeNetworkOptions, type ReadRouteTablesOptions, type ResolveOptions, type RouteTables,
} from './net/node/index.ts';
export * from './stun/index.ts';
export * from './portmap/index.ts';
import { localAddressToward, nodeEnv, readRouteTables } from './net/node/index.ts';
import { PortMapper, mapperGateway, type PortMapperOptions } from './portmap/index.ts';

/** Options of openPortMapper(): PortMapper's, with Node defaults. */
export interface NodePortMapperOptions extends Omit<PortMapperOptions, 'env'> {
  /** @default nodeEnv() */
  readonly env?: PortMapperOptions['env'];
  /**
   * On SIGINT or SIGTERM, close the mapper (deleting its mappings), then let the signal
   * take its course (the process exits unless something else handles it). @default false
   */
  readonly closeOnExitSignals?: boolean;
}

/**
 * A PortMapper on this host: the default gateway from /proc's route tables, our address
 * toward it from the kernel's source selection, real sockets and clock.
 */
export async function openPortMapper(options: NodePortMapperOptions = {}): Promise<PortMapper> {
  const { env = nodeEnv(), closeOnExitSignals = false, ...rest } = options;
  const routeTables = rest.routeTables ?? (rest.gateway === undefined ? await readRouteTables(rest.signal && { signal: rest.signal }) : undefined);
  const gateway = mapperGateway({ ...rest, ...(routeTables !== undefined && { routeTables }) });
  const localAddress = rest.localAddress ?? (gateway === undefined ? undefined : await localAddressToward(gateway));
  const exit = closeOnExitSignals ? new AbortController() : undefined;
  const closeOn = [exit?.signal, rest.closeOn].filter((s): s is AbortSignal => s !== undefined);
  const mapper = await PortMapper.create({
    ...rest, env,
    ...(gateway !== undefined && { gateway }),
    ...(localAddress !== undefined && { localAddress }),
    ...(closeOn.length > 0 && { closeOn: AbortSignal.any(closeOn) }),
  });
  if (exit !== undefined) {
    const onSignal = (signal: NodeJS.Signals): void => {
      exit.abort();
      // Once the mappings are gone, the signal again, now without us: the default action (exit) applies.
      void mapper.closed.then(() => process.kill(process.pid, signal));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    void mapper.closed.then(() => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    });
  }
  return mapper;
}
