// The Network compliance suite against the simulated world: two public hosts on the
// internet segment, over IPv4 and IPv6, over perfect links and over links with delay
// and jitter (segments reordered on the way). The suite waits in real time, so a pump
// keeps the virtual clock at the wall clock's pace; the modelled TLS handshake trusts a
// certificate given as its own CA, as the real one does.
import { World, type LinkOptions } from '../../src/net/sim/index.ts';
import { realTimePump } from '../helpers/sim.ts';
import { networkCompliance, type NetworkUnderTest } from './network.ts';

/** Certificate and key text: the simulated TLS compares text, it does not parse PEM. */
const TLS = { cert: 'sim certificate of host b', key: 'sim key of host b' } as const;

function simulated(family: 4 | 6, link?: LinkOptions): () => NetworkUnderTest {
  return () => {
    const world = new World({ seed: `compliance-${family}` });
    const a = world.addHost({ name: 'a', ...(link && { link }) });
    const b = world.addHost({ name: 'b', ...(link && { link }) });
    const pump = realTimePump(world);
    return {
      a: { network: a.network, address: a.address(family) },
      b: { network: b.network, address: b.address(family) },
      tls: TLS,
      close: async () => {
        pump.stop();
        await world.close();
      },
    };
  };
}

networkCompliance('SimNetwork on the simulated internet (IPv4)', simulated(4));
networkCompliance('SimNetwork on the simulated internet (IPv6)', simulated(6));
networkCompliance('SimNetwork over 5 ms links with 3 ms jitter (IPv4)', simulated(4, { delayMs: 5, jitterMs: 3 }));
