// What `natkit --help` lists, and each command's own summary: one place, light to load,
// so the binary imports only the command it runs (commands/index.ts).
export const COMMAND_SUMMARIES = {
  'chat': 'chat in a room or by name with peers behind NATs, end-to-end encrypted, direct where possible',
  'check': 'find out what NAT and firewall stand between you and the internet',
  'connect': 'reach a peer behind NATs by name or room: discovery, registration, punch, path',
  'demo': 'watch two peers behind NATs find each other and punch, in a simulated world (no root, no setup)',
  'map': 'ask the router for port mappings (PCP, NAT-PMP, UPnP IGD)',
  'pipe': 'stdin to a peer and the peer to stdout over a punched path, like netcat',
  'serve': 'run STUN, TURN and rendezvous together on one shared UDP port',
  'stun': 'ask a STUN server which address and port it sees you as',
  'stun-server': 'run a STUN server (RFC 8489, RFC 5780 NAT behaviour discovery, RFC 3489 clients)',
  'turn': 'allocate a TURN relay (RFC 8656) and relay stdin/stdout through it, like netcat',
  'turn-server': 'run a TURN relay (RFC 8656) with long-term or TURN REST API credentials',
} as const;

/** A command's name. */
export type CommandName = keyof typeof COMMAND_SUMMARIES;
