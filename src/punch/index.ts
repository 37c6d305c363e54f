// natkit/punch (layer 4): the connect engine — a strategy per NAT pair (RFC 4787 terms,
// RFC 5128 techniques, port prediction, the birthday method), ICE-style authenticated
// checks and nomination (RFC 8445), keepalives, relay fallback and upgrade back to direct.
export {
  DEFAULT_BUDGET, birthdayProbability, planPunch, predictPorts,
  type PathMethod, type PunchBudget, type PunchOffer, type PunchOutcome, type PunchPlan, type Target,
} from './strategy.ts';
export {
  FRAME_DATA, FRAME_UPGRADE, ICE_CONTROLLED, ICE_CONTROLLING, UPGRADE_FRAME, USE_CANDIDATE, dataFrame, encodeCheck, pairCredentials, readInbound,
  type CheckRequest, type IceCredentials, type Inbound, type PairCredentials, type PairSecretInputs,
} from './checks.ts';
export { CheckList, type CheckPair } from './checklist.ts';
export { PunchConnection, punch, type PunchOptions, type PunchStats, type PunchedPath } from './engine.ts';
export { EXPECTED_TABLE, PRESETS, PRESET_ROUTERS, expectedOutcome, isPreset, parseTable, presetHost, type Preset } from './presets.ts';
export { ConnectAgent, MUX_PUNCH, connect, describePath, type ConnectAgentStats, type ConnectOptions, type ConnectProgress, type ConnectPunchOptions, type ConnectTurn } from './connect.ts';
export { PeerConnection, keyFingerprint, type PeerInfo } from './peer-connection.ts';
