// natkit/chat (layer 5): rooms and private messages between peers behind NATs, each
// conversation a secure session over a punched or relayed path (docs/chat.md).
export {
  CHAT_VERSION, ChatDecodeError, MAX_RECEIPT_IDS, MAX_TEXT_BYTES, decodeChatFrame, displaySafe, encodeChatFrame,
  type ChatFrame, type ReceiptFrame, type TextFrame, type UnknownFrame,
} from './codec.ts';
export {
  ChatClient, type ChatEvent, type ChatMessage, type ChatOptions, type ChatPeer, type SentMessage, type TrustVerdict,
} from './client.ts';
