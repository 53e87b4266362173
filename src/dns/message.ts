/**
 * DNS messages on top of dns2's `Packet` codec: building our query (EDNS0, DO bit), deciding whether a message is
 * the answer to it, and reading the answer out of it. No I/O here.
 */
import { Packet, type Header, type Resource } from 'dns2';
import { DnsError } from './errors.ts';

/** EDNS0 UDP payload size we advertise: the DNS Flag Day 2020 value, which avoids IP fragmentation. */
export const EDNS_UDP_PAYLOAD = 1232;

/** How many CNAMEs we follow inside one answer; a longer chain is treated as no answer. */
const MAX_CNAME_CHAIN = 8;

/** dns2 parses AD and CD but its `Header` type omits them. */
type HeaderWithDnssecBits = Header & { ad?: number; cd?: number };

/** One record of the asked type, as the codec delivers it. */
export type DnsRecord =
  /** TXT: the character-strings, each decoded as UTF-8 by the codec (our records are ASCII). */
  | { readonly kind: 'txt'; readonly type: number; readonly ttl: number; readonly strings: readonly string[] }
  /** A type the codec does not know (KEY, OPENPGPKEY): the exact RDATA octets. */
  | { readonly kind: 'raw'; readonly type: number; readonly ttl: number; readonly rdata: Buffer }
  /** A type the codec decodes into fields we do not use (A, SOA, …); only its presence is reported. */
  | { readonly kind: 'other'; readonly type: number; readonly ttl: number };

/** What a response says about the question, once it is known to be the answer to it. */
export type ResponseVerdict =
  | {
      readonly kind: 'answer';
      /** `answer`: records of the type exist; `nodata`: the name exists without them; `nxdomain`: no such name. */
      readonly outcome: 'answer' | 'nxdomain' | 'nodata';
      readonly records: readonly DnsRecord[];
      /** Answer records of the asked type the codec could not decode (garbage RDATA), as messages. */
      readonly malformed: readonly string[];
      /** Seconds the outcome may be cached: least TTL of the records used, or the RFC 2308 negative TTL. */
      readonly ttl: number;
      /** The AD flag as received; whether to trust it is decided by the caller. */
      readonly authenticData: boolean;
    }
  | { readonly kind: 'truncated' }
  | { readonly kind: 'failure'; readonly outcome: 'servfail' | 'refused' | 'bad-response'; readonly detail: string };

/** What a query asks. */
export interface Question {
  /** Fully qualified name without the trailing dot. */
  readonly name: string;
  /** Numeric RR type. */
  readonly type: number;
}

/**
 * Checks that a name can be asked: non-empty labels of letters, digits, `-` and `_`, at most 63 octets each and
 * 255 octets on the wire. Returns it in lower case without a trailing dot.
 * @throws DnsError `DNS_BAD_NAME`
 */
export function normaliseQueryName(name: string): string {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = trimmed.split('.');
  const wireLength = labels.reduce((sum, label) => sum + label.length + 1, 1);
  const bad = labels.find((label) => !/^[A-Za-z0-9_-]{1,63}$/.test(label));
  if (trimmed === '' || bad !== undefined || wireLength > 255) {
    throw new DnsError('DNS_BAD_NAME', `cannot ask DNS for "${name}": not a valid domain name`);
  }
  return trimmed.toLowerCase();
}

/** Builds the wire form of a recursive query with EDNS0 (payload {@link EDNS_UDP_PAYLOAD}), DO=1 and AD=1. */
export function buildQuery(question: Question, id: number): Buffer {
  const query = new Packet();
  const header: HeaderWithDnssecBits = new Packet.Header({ id, rd: 1 });
  // AD=1 in a query asks for the AD bit in the answer (RFC 6840 §5.7); DO=1 asks for DNSSEC records.
  header.ad = 1;
  query.header = header;
  query.questions.push(new Packet.Question(question.name, question.type, Packet.CLASS.IN));
  query.additionals.push(Packet.Resource.EDNS([], { udpPayloadSize: EDNS_UDP_PAYLOAD, doFlag: true }));
  return query.toBuffer();
}

/**
 * Whether a message is the response to our query: same ID, QR set, standard opcode, and exactly our question
 * (name compared case-insensitively, RFC 4343). Anything else is ignored, never believed (RFC 5452 §9.1).
 */
export function isResponseTo(message: Packet, id: number, question: Question): boolean {
  const asked = message.questions[0];
  return (
    message.header.id === id &&
    message.header.qr === 1 &&
    message.header.opcode === 0 &&
    message.questions.length === 1 &&
    asked !== undefined &&
    asked.type === question.type &&
    asked.class === Packet.CLASS.IN &&
    asked.name.toLowerCase().replace(/\.$/, '') === question.name
  );
}

/** Parses a message, or returns undefined when it is not one (too short, broken header or question). */
export function parseMessage(bytes: Buffer): Packet | undefined {
  try {
    return Packet.parse(bytes);
  } catch {
    return undefined;
  }
}

/** Reads what a response (already matched with {@link isResponseTo}) says. */
export function judgeResponse(message: Packet, question: Question): ResponseVerdict {
  if (message.header.tc === 1) return { kind: 'truncated' };
  // A decode failure that was not confined to one record's RDATA leaves the rest of the message unread:
  // the answer may be incomplete, so the whole response is unusable.
  const fatal = message.errors.find((error) => !error.recovered);
  if (fatal) return { kind: 'failure', outcome: 'bad-response', detail: fatal.message };
  const rcode = message.header.rcode;
  if (rcode === Packet.RCODE.SERVFAIL) return { kind: 'failure', outcome: 'servfail', detail: 'SERVFAIL' };
  if (rcode !== Packet.RCODE.NOERROR && rcode !== Packet.RCODE.NXDOMAIN) {
    return { kind: 'failure', outcome: 'refused', detail: rcodeName(rcode) };
  }
  const authenticData = (message.header as HeaderWithDnssecBits).ad === 1;
  const chain = followCnames(message, question.name);
  // dns2 names the record type in its RDATA decode errors ("TXT decode: …"); an RRSIG that failed to decode
  // next to good records must not make the asked type look malformed.
  const typeName = `${Packet.typeName(question.type)} `;
  const malformed = message.errors
    .filter((error) => error.section === 'answers' && error.message.includes(typeName))
    .map((error) => error.message);
  if (rcode === Packet.RCODE.NXDOMAIN) {
    return { kind: 'answer', outcome: 'nxdomain', records: [], malformed, ttl: negativeTtl(message), authenticData };
  }
  const records = message.answers
    .filter((rr) => rr.type === question.type && chain.names.has(rr.name.toLowerCase()))
    .map(toRecord);
  if (records.length === 0 && malformed.length === 0) {
    return { kind: 'answer', outcome: 'nodata', records, malformed, ttl: negativeTtl(message), authenticData };
  }
  const ttl = Math.min(...records.map((r) => r.ttl), ...chain.ttls);
  return { kind: 'answer', outcome: 'answer', records, malformed, ttl: Number.isFinite(ttl) ? ttl : 0, authenticData };
}

/** The owner names the answer may use: the question name and the CNAME targets reachable from it. */
function followCnames(message: Packet, name: string): { names: Set<string>; ttls: number[] } {
  const names = new Set([name]);
  const ttls: number[] = [];
  let current = name;
  for (let hop = 0; hop < MAX_CNAME_CHAIN; hop++) {
    const cname = message.answers.find(
      (rr) => rr.type === Packet.TYPE.CNAME && rr.name.toLowerCase() === current && typeof rr.domain === 'string',
    );
    if (!cname?.domain) break;
    current = cname.domain.toLowerCase().replace(/\.$/, '');
    if (names.has(current)) break;
    names.add(current);
    ttls.push(cname.ttl);
  }
  return { names, ttls };
}

/** RFC 2308 §5: a negative answer is cached for the lesser of the SOA's TTL and its MINIMUM field; without SOA, not at all. */
function negativeTtl(message: Packet): number {
  const soa = message.authorities.find((rr) => rr.type === Packet.TYPE.SOA);
  if (!soa) return 0;
  return Math.min(soa.ttl, soa.minimum ?? 0);
}

function toRecord(rr: Resource): DnsRecord {
  if (Buffer.isBuffer(rr.data)) return { kind: 'raw', type: rr.type, ttl: rr.ttl, rdata: rr.data };
  if (Array.isArray(rr.data)) return { kind: 'txt', type: rr.type, ttl: rr.ttl, strings: rr.data };
  return { kind: 'other', type: rr.type, ttl: rr.ttl };
}

function rcodeName(rcode: number): string {
  const entry = Object.entries(Packet.RCODE).find(([, value]) => value === rcode);
  return entry ? entry[0] : `RCODE${rcode}`;
}
