/**
 * The loopback DNS server of the benchmark, standing in for the site's validating resolver: it answers TXT,
 * KEY and OPENPGPKEY at `_muse.<domain>` for every domain under bench.test, with the AD flag set (as a
 * validating resolver on loopback would), TTL one hour.
 *
 * Fixed domains (`r1.bench.test` …) publish keys given at start; every other domain gets its own key from a
 * pool generated at start, so a cold-cache run also parses and checks a key it has not seen. Answers are
 * written straight to the wire from prepared record data: the server must cost the machine far less than the
 * milter it serves, and dns2's encoder takes about half a millisecond per answer (LIBRARIES.md §3).
 *
 * It runs in a worker thread of the benchmark process (see {@link startBenchDns}).
 */
import { createSocket } from 'node:dgram';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { generateKey } from 'openpgp';
import { buildKeyRdata, buildSiteTxt, splitCharacterStrings } from '../src/keys/index.ts';
import { RR_TYPE } from '../src/dns/index.ts';

/** What the worker is started with. */
interface DnsWorkerData {
  readonly port: number;
  /** Binary public keys of the fixed domains, by domain. */
  readonly fixed: Readonly<Record<string, Uint8Array>>;
  /** Keys to generate for the other domains. */
  readonly poolSize: number;
}

/** A running server. */
export interface BenchDns {
  /** `127.0.0.1:PORT`, as the milter's `dns.servers` takes it. */
  readonly address: string;
  /** Stops the worker. */
  close(): Promise<void>;
}

/** The three RDATA sets of one domain. */
interface DomainRecords {
  readonly txt: Buffer;
  readonly key: Buffer;
  readonly openpgpkey: Buffer;
}

const TTL = 3600;

function recordsFor(key: Uint8Array): DomainRecords {
  const strings = splitCharacterStrings(buildSiteTxt({ policy: 'opportunistic', maxAge: 604_800, key }));
  const txt = Buffer.concat(strings.flatMap((s) => [Buffer.from([s.length]), Buffer.from(s, 'latin1')]));
  return { txt, key: buildKeyRdata(key), openpgpkey: Buffer.from(key) };
}

/** Reads the question of a query: owner name (lower case) and type, and where the question ends. */
function readQuestion(query: Buffer): { name: string; type: number; end: number } | undefined {
  if (query.length < 17) return undefined;
  let offset = 12;
  const labels: string[] = [];
  for (;;) {
    const length = query[offset];
    if (length === undefined || length > 63) return undefined;
    offset++;
    if (length === 0) break;
    labels.push(query.toString('latin1', offset, offset + length).toLowerCase());
    offset += length;
  }
  if (offset + 4 > query.length) return undefined;
  return { name: labels.join('.'), type: query.readUInt16BE(offset), end: offset + 4 };
}

/** The answer to `query`: its ID and question, QR AA RD RA AD, and the records (NXDOMAIN without). */
function answer(query: Buffer, question: { type: number; end: number }, rdata: Buffer | undefined): Buffer {
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  // QR, opcode 0, AA, RD | RA, AD; RCODE 3 when the name has no records.
  header.writeUInt16BE(0x8580 | 0x20 | (rdata === undefined ? 3 : 0), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(rdata === undefined ? 0 : 1, 6);
  const parts = [header, query.subarray(12, question.end)];
  if (rdata !== undefined) {
    const fixed = Buffer.alloc(12);
    fixed.writeUInt16BE(0xc00c, 0); // the owner name: a pointer to the question's
    fixed.writeUInt16BE(question.type, 2);
    fixed.writeUInt16BE(1, 4);
    fixed.writeUInt32BE(TTL, 6);
    fixed.writeUInt16BE(rdata.length, 10);
    parts.push(fixed, rdata);
  }
  return Buffer.concat(parts);
}

async function serve(data: DnsWorkerData): Promise<void> {
  const fixed = new Map(Object.entries(data.fixed).map(([domain, key]) => [domain, recordsFor(key)]));
  const pool: DomainRecords[] = [];
  for (let k = 0; k < data.poolSize; k++) {
    const { publicKey } = await generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ email: `postmaster@pool${k}.bench.test` }], format: 'object' });
    pool.push(recordsFor(publicKey.write()));
  }
  const assigned = new Map<string, DomainRecords>();
  const recordsOf = (domain: string): DomainRecords | undefined => {
    if (!domain.endsWith('.bench.test')) return undefined;
    let records = fixed.get(domain) ?? assigned.get(domain);
    if (records === undefined && pool.length > 0) {
      records = pool[assigned.size % pool.length] as DomainRecords;
      assigned.set(domain, records);
    }
    return records;
  };
  const socket = createSocket('udp4');
  socket.on('message', (query, peer) => {
    const question = readQuestion(query);
    if (question === undefined || !question.name.startsWith('_muse.')) return;
    const records = recordsOf(question.name.slice('_muse.'.length));
    const rdata =
      records === undefined
        ? undefined
        : question.type === RR_TYPE.TXT
          ? records.txt
          : question.type === RR_TYPE.KEY
            ? records.key
            : question.type === RR_TYPE.OPENPGPKEY
              ? records.openpgpkey
              : undefined;
    socket.send(answer(query, question, rdata), peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(data.port, '127.0.0.1', () => resolve());
  });
  parentPort?.postMessage('ready');
}

/**
 * Starts the server in a worker thread on `127.0.0.1:port` (UDP; every answer fits the EDNS payload the milter
 * advertises, so no TCP).
 */
export async function startBenchDns(port: number, fixed: Readonly<Record<string, Uint8Array>>, poolSize: number): Promise<BenchDns> {
  const worker = new Worker(new URL(import.meta.url), { workerData: { port, fixed, poolSize } satisfies DnsWorkerData });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`DNS worker exited (${code})`)));
  });
  return {
    address: `127.0.0.1:${port}`,
    close: async () => {
      await worker.terminate();
    },
  };
}

if (!isMainThread && (workerData as DnsWorkerData | undefined)?.port !== undefined) await serve(workerData as DnsWorkerData);
