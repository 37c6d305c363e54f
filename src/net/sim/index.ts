// natkit/sim (layer 1): the simulated world — a deterministic, seeded network on a
// virtual clock that implements the same Network/Clock/Random/Env seam as net/node, with
// routers whose NAT behaviour is a set of independent RFC 4787 knobs, NAT behind NAT,
// impaired links and a packet trace. No real sockets, timers, wall clock or Math.random.
//
//   const world = new World({ seed: 7 });
//   const server = world.addHost({ name: 'server', addresses: ['198.18.0.10', '198.18.0.11'] });
//   const home = world.addRouter({ name: 'home', nat: NAT_PRESETS['port-restricted-cone'] });
//   const alice = home.addHost({ name: 'alice' });            // 100.64.1.2, behind home's 198.18.0.101
//   const stun = await StunServer.create({ env: server.env, addresses: ['198.18.0.10', '198.18.0.11'], ports: [3478, 3479] });
//   const client = await StunClient.create({ env: alice.env, server: endpoint('198.18.0.10', 3478) });
//   const r = await world.run(client.binding());               // the clock moves until it settles
//   // r.mapped is home.mappings()[0].external; on failure print world.trace.format()
//
// Protocol code that awaits runs under world.run(promise) (or world.elapse(ms)), which
// lets promise callbacks settle between events; callback code can use the synchronous
// clock.advance / runUntil / runUntilIdle. Every loop is bounded.
export { World, type WorldOptions } from './world.ts';
export { SimSegment, SimRouter, type ForwardOptions, type HostOptions, type RouterOptions } from './topology.ts';
export { SimHost } from './host.ts';
export { SimNetwork, type OpenSockets } from './network.ts';
export { SimUdpSocket } from './udp.ts';
export { SimStream } from './stream.ts';
export { SimClock, type RunOptions, type SimClockOptions, type StepOptions } from './clock.ts';
export { SimRandom } from './random.ts';
export { Link, type LinkOptions } from './link.ts';
export {
  DEFAULT_BEHAVIOUR, resolveBehaviour,
  type Dependence, type Mapping, type NatBehaviour, type NatOptions, type PortAllocation, type RouterKind,
} from './nat.ts';
export { NAT_PRESETS, type NatPresetName } from './presets.ts';
export { PacketTrace, type DropReason, type TraceEntry, type TraceEvent, type TraceFormatOptions } from './trace.ts';
export type { SimPacket, SimProto, TcpFlag } from './packet.ts';
export type { SimErrno } from './ports.ts';
