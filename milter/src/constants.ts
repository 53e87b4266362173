/**
 * Protocol constants of the milter protocol, version 6, as spoken by Sendmail 8.14+ and Postfix 2.6+.
 * Each constant carries the libmilter name in a trailing comment so the code can be read beside the
 * C headers and Postfix's MILTER_README.
 */

/** The newest protocol version; the only one whose step and no-reply flags we rely on. */
export const PROTOCOL_VERSION = 6;

/** The oldest version an MTA may offer; version 1 had no negotiation of steps at all. */
export const MIN_PROTOCOL_VERSION = 2;

/** libmilter's MILTER_CHUNK_SIZE: the largest body chunk an MTA sends and a filter should send back. */
export const MAX_BODY_CHUNK = 65535;

/** Command codes sent by the MTA. */
export const CommandCode = {
  Abort: 'A', // SMFIC_ABORT
  Body: 'B', // SMFIC_BODY
  Connect: 'C', // SMFIC_CONNECT
  Macro: 'D', // SMFIC_MACRO
  BodyEnd: 'E', // SMFIC_BODYEOB
  Helo: 'H', // SMFIC_HELO
  QuitNewConnection: 'K', // SMFIC_QUIT_NC
  Header: 'L', // SMFIC_HEADER
  Mail: 'M', // SMFIC_MAIL
  EndOfHeaders: 'N', // SMFIC_EOH
  OptionNegotiation: 'O', // SMFIC_OPTNEG
  Quit: 'Q', // SMFIC_QUIT
  Rcpt: 'R', // SMFIC_RCPT
  Data: 'T', // SMFIC_DATA
  Unknown: 'U', // SMFIC_UNKNOWN
} as const;

/** Response codes sent by the filter. */
export const ResponseCode = {
  AddRecipient: '+', // SMFIR_ADDRCPT
  DeleteRecipient: '-', // SMFIR_DELRCPT
  AddRecipientWithArgs: '2', // SMFIR_ADDRCPT_PAR
  Accept: 'a', // SMFIR_ACCEPT
  ReplaceBody: 'b', // SMFIR_REPLBODY
  Continue: 'c', // SMFIR_CONTINUE
  Discard: 'd', // SMFIR_DISCARD
  ChangeFrom: 'e', // SMFIR_CHGFROM
  ConnectionFail: 'f', // SMFIR_CONN_FAIL
  AddHeader: 'h', // SMFIR_ADDHEADER
  InsertHeader: 'i', // SMFIR_INSHEADER
  ChangeHeader: 'm', // SMFIR_CHGHEADER
  OptionNegotiation: 'O', // SMFIC_OPTNEG (the negotiation reply reuses the command code)
  Progress: 'p', // SMFIR_PROGRESS
  Quarantine: 'q', // SMFIR_QUARANTINE
  Reject: 'r', // SMFIR_REJECT
  Skip: 's', // SMFIR_SKIP
  Tempfail: 't', // SMFIR_TEMPFAIL
  ReplyCode: 'y', // SMFIR_REPLYCODE
} as const;

/** Action flags: the modifications a filter may make, negotiated in OPTNEG. */
export const Action = {
  AddHeaders: 0x01, // SMFIF_ADDHDRS
  ChangeBody: 0x02, // SMFIF_CHGBODY
  AddRecipient: 0x04, // SMFIF_ADDRCPT
  DeleteRecipient: 0x08, // SMFIF_DELRCPT
  ChangeHeaders: 0x10, // SMFIF_CHGHDRS
  Quarantine: 0x20, // SMFIF_QUARANTINE
  ChangeFrom: 0x40, // SMFIF_CHGFROM [v6]
  AddRecipientWithArgs: 0x80, // SMFIF_ADDRCPT_PAR [v6]
  SetMacroList: 0x100, // SMFIF_SETSYMLIST [v6]
} as const;

/** Every action flag this library understands. */
export const ALL_ACTIONS = 0x1ff;

/** Protocol flags: steps the MTA may leave out, replies the filter may leave out, and wire variants. */
export const Protocol = {
  NoConnect: 0x01, // SMFIP_NOCONNECT
  NoHelo: 0x02, // SMFIP_NOHELO
  NoMail: 0x04, // SMFIP_NOMAIL
  NoRcpt: 0x08, // SMFIP_NORCPT
  NoBody: 0x10, // SMFIP_NOBODY
  NoHeaders: 0x20, // SMFIP_NOHDRS
  NoEndOfHeaders: 0x40, // SMFIP_NOEOH
  NoReplyHeader: 0x80, // SMFIP_NR_HDR (also SMFIP_NOHREPL)
  NoUnknown: 0x100, // SMFIP_NOUNKNOWN [v6]
  NoData: 0x200, // SMFIP_NODATA [v6]
  Skip: 0x400, // SMFIP_SKIP [v6]: the MTA understands SMFIR_SKIP
  RcptRejected: 0x800, // SMFIP_RCPT_REJ [v6]: also send recipients the MTA rejected
  NoReplyConnect: 0x1000, // SMFIP_NR_CONN [v6]
  NoReplyHelo: 0x2000, // SMFIP_NR_HELO [v6]
  NoReplyMail: 0x4000, // SMFIP_NR_MAIL [v6]
  NoReplyRcpt: 0x8000, // SMFIP_NR_RCPT [v6]
  NoReplyData: 0x10000, // SMFIP_NR_DATA [v6]
  NoReplyUnknown: 0x20000, // SMFIP_NR_UNKN [v6]
  NoReplyEndOfHeaders: 0x40000, // SMFIP_NR_EOH [v6]
  NoReplyBody: 0x80000, // SMFIP_NR_BODY [v6]
  HeaderLeadingSpace: 0x100000, // SMFIP_HDR_LEADSPC [v6]: header values keep their leading space
  MaxDataSize256K: 0x10000000, // SMFIP_MDS_256K: the MTA may send chunks up to 256 KiB
  MaxDataSize1M: 0x20000000, // SMFIP_MDS_1M: the MTA may send chunks up to 1 MiB
} as const;

/** Macro stages, the indexes used in the macro-list part of the negotiation reply. */
export const MacroStage = {
  Connect: 0, // SMFIM_CONNECT
  Helo: 1, // SMFIM_HELO
  Mail: 2, // SMFIM_ENVFROM
  Rcpt: 3, // SMFIM_ENVRCPT
  Data: 4, // SMFIM_DATA
  EndOfMessage: 5, // SMFIM_EOM
  EndOfHeaders: 6, // SMFIM_EOH
} as const;

/** A macro stage name. */
export type MacroStageName = keyof typeof MacroStage;

/** Well-known macro names, as Sendmail and Postfix spell them. */
export const Macro = {
  QueueId: 'i',
  MtaHostname: 'j',
  DaemonName: '{daemon_name}',
  DaemonAddress: '{daemon_addr}',
  ClientAddress: '{client_addr}',
  ClientName: '{client_name}',
  AuthType: '{auth_type}',
  AuthAuthen: '{auth_authen}',
  MailAddress: '{mail_addr}',
  RcptAddress: '{rcpt_addr}',
  RcptMailer: '{rcpt_mailer}',
  MessageId: '{msg_id}',
} as const;
