// natkit/portmap: asking the gateway for port mappings. NAT-PMP (RFC 6886) and PCP
// (RFC 6887) codecs and clients, PCP with NAT-PMP fallback, the shared retransmission
// core and gateway channel, epoch checks, the default gateway from the route table, and
// the gateway side: a NAT-PMP, PCP and UPnP IGD server on one mapping table.
export * from './retransmit.ts';
export * from './channel.ts';
export * from './epoch.ts';
export { gatewayEndpoint, type CallOptions, type PortControlOptions, type ResultInfo } from './client-base.ts';
export * from './natpmp.ts';
export * from './natpmp-client.ts';
export * from './pcp-constants.ts';
export * from './pcp-options.ts';
export * from './pcp.ts';
export * from './pcp-client.ts';
export * from './port-control.ts';
export * from './gateway.ts';
export * from './upnp-index.ts';
export * from './server/index.ts';
export { Mapping, MAPPER_PROTOCOLS, type MapperProtocol, type MappingChange, type MappingRecord, type MappingState } from './mapping.ts';
export type { PortMappingProbe, ProtocolProbe } from './mapper-probe.ts';
export * from './mapper.ts';
