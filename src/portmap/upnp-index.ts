// UPnP IGD v1/v2 port mapping (natkit/portmap): SSDP discovery, device descriptions,
// SOAP control. The portmap index re-exports this file.
export { UpnpGateway, type UpnpCallOptions, type UpnpDiscoverOptions, type UpnpMappingKey, type UpnpOpenOptions } from './upnp-gateway.ts';
export type { UpnpMapRequest, UpnpMapResult, UpnpMappingEntry, UpnpPortMapping, UpnpProtocol } from './upnp-map.ts';
export {
  UPNP_ERRORS, UpnpFaultError, buildSoapFault, buildSoapRequest, buildSoapResponse, escapeXml, isUpnpFault, parseSoapRequest, parseSoapResponse, soapCall, soapEnvelope,
  type SoapCall, type SoapRequest, type SoapResult,
} from './upnp-soap.ts';
export {
  IGD_SEARCH_TARGETS, SSDP_MULTICAST, SSDP_PORT, buildMSearch, parseSsdpResponse, searchSsdp,
  type MSearchOptions, type SsdpResponse, type SsdpSearchOptions, type SsdpSearchResult,
} from './upnp-ssdp.ts';
export {
  WAN_SERVICE_TYPES, checkLocation, parseDeviceDescription, resolveControlUrl,
  type DeviceDescription, type WanConnectionService, type WanServiceType,
} from './upnp-description.ts';
export { httpRequest, type HttpExchange, type HttpRequest, type HttpRequestOptions } from './upnp-http.ts';
export { HttpRequestParser, HttpResponseParser, parseHead, type HttpHead, type HttpMessage, type HttpParserOptions, type HttpResponse } from './upnp-http-parse.ts';
export { parseXml, type XmlElement, type XmlLimits } from './upnp-xml.ts';
