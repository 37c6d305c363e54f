// The gateway side of port mapping (natkit/portmap): one mapping table shared by NAT-PMP,
// PCP and UPnP IGD, their sans-I/O answering cores, and a server running them on an Env.
export { PortMapGatewayServer, type GatewayHttpLimits, type GatewayServerStats, type PortMapGatewayOptions } from './gateway-server.ts';
export { MappingTable, type GatewayLimits, type GatewayMapping, type MappingOrigin, type MappingRequest, type MappingTableStats, type PortForwardBackend } from './table.ts';
export { PortControlResponder, type PortControlResponderOptions } from './port-control.ts';
export { UPNP_CONTROL_PATH, UPNP_DESCRIPTION_PATH, UpnpIgdResponder, formatHttpResponse, type UpnpResponderOptions, type UpnpServerOptions } from './upnp-igd.ts';
