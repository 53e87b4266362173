/**
 * The milter server: accepts MTA connections on a unix or TCP socket and runs one {@link MilterSession}
 * per connection. This is the only module with sockets and timers.
 *
 * Every reply to one command leaves in a single write, and TCP_NODELAY is set: a filter that writes its
 * end-of-message replies as several small segments meets Nagle's algorithm against the MTA's delayed
 * ACK and stalls about 40 ms per message on loopback TCP.
 */
import cluster from 'node:cluster';
import { EventEmitter } from 'node:events';
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { formatMilterAddress, parseMilterAddress, type MilterAddress } from './address.ts';
import { decodeCommand, type Command } from './codec/commands.ts';
import { FrameDecoder } from './codec/frame-decoder.ts';
import { encodeResponse, type Response } from './codec/responses.ts';
import { FramePool } from './frame-pool.ts';
import { MilterProtocolError, MilterUsageError } from './errors.ts';
import { silentLogger, withContext, type MilterLogger } from './logger.ts';
import { defineMilter, type MilterDefinition } from './milter.ts';
import { MilterSession } from './session.ts';
import { TEMPFAIL } from './verdicts.ts';
import { ResponseCode } from './constants.ts';

/** Options of {@link MilterServer}. Every limit has a documented default. */
export interface MilterServerOptions {
  /** Where to listen: `unix:/path`, `inet:PORT@HOST`, `inet:HOST:PORT`, `inet6:PORT@HOST` (port 0: any free port). */
  listen: string;
  /** Permissions of a unix socket (default 0o660: the MTA's group may connect, nobody else). */
  socketMode?: number;
  /**
   * Group id given to a unix socket (the MTA's group, so that `socketMode` lets it connect). Default: left as
   * created (the process's group, or the directory's when that directory is set-group-id). Changing it needs root
   * or membership of the group.
   */
  socketGroup?: number;
  /** Largest frame accepted from the MTA, in bytes (default 1 MiB + 1: the largest chunk an MTA may negotiate, plus the command byte). */
  maxFrameSize?: number;
  /** Body bytes kept in memory per message before spilling to disk, for filters that collect bodies (default 1 MiB). */
  maxBufferedBody?: number;
  /** Directory for spilled bodies (default: the system temporary directory). */
  spoolDirectory?: string;
  /** Milliseconds without traffic after which a connection is closed (default 15 minutes). */
  idleTimeout?: number;
  /** Milliseconds between progress replies while an end-of-message handler runs (default 10 s). */
  progressInterval?: number;
  /** Replies larger than this many bytes are written in several writes, with back-pressure (default 256 KiB). */
  writeBatchBytes?: number;
  /**
   * Most MTA connections served at once (default 256). A connection beyond it is answered with a tempfail at its
   * first step and closed, so the MTA answers its SMTP client with a 4xx and the message is tried again later.
   */
  maxConnections?: number;
  /**
   * Paces the large bodies: once a message's body has passed `pacer.aboveBytes`, each further body chunk is read
   * only when `take` allows it (the socket is not read meanwhile, so the MTA's writes wait). Ordinary messages
   * never reach it. Default: no pacing.
   */
  bodyPacer?: BodyPacer;
  logger?: MilterLogger;
}

/** See {@link MilterServerOptions.bodyPacer}. */
export interface BodyPacer {
  /** Body bytes of a message read at full speed before pacing starts. */
  readonly aboveBytes: number;
  /** Asks to read `bytes` more: nothing when they may be read now, else a promise of when. */
  take(bytes: number): Promise<void> | undefined;
}

/** Defaults of the limits, exported for documentation and tests. */
export const SERVER_DEFAULTS = {
  socketMode: 0o660,
  maxFrameSize: 1024 * 1024 + 1,
  maxBufferedBody: 1024 * 1024,
  idleTimeout: 15 * 60 * 1000,
  progressInterval: 10_000,
  writeBatchBytes: 256 * 1024,
  maxConnections: 256,
} as const;

const PROGRESS_FRAME = encodeResponse({ kind: 'progress' });
/** A buffer to write, and what returns it to its pool once written. */
interface OutgoingPart {
  readonly buffer: Buffer;
  readonly release?: () => void;
}

/** Reply batches from this size on are written as a gathering write rather than copied into one buffer. */
const GATHER_MIN_BYTES = 64 * 1024;

/**
 * What a connection beyond `maxConnections` is served: a filter that answers tempfail at whichever step comes first.
 *
 * Why not just close it: the MTA treats a milter that closes or cannot be reached by its own failure setting
 * (Postfix's `milter_default_action`, Sendmail's `F=` flags), and where that is `accept` the message would pass
 * unprocessed. A tempfail verdict is obeyed whatever that setting says: Postfix answers the SMTP client
 * `451 4.7.1 Service unavailable - try again later` and skips the milter for the rest of that SMTP session.
 * Every step is negotiated with a reply (none is left out), so the first one after the negotiation carries it.
 */
const OVERLOADED = defineMilter({
  name: 'connection-limit',
  createHandler: () => ({
    connect: () => TEMPFAIL,
    helo: () => TEMPFAIL,
    mailFrom: () => TEMPFAIL,
    rcptTo: () => TEMPFAIL,
    data: () => TEMPFAIL,
    header: () => TEMPFAIL,
    endOfHeaders: () => TEMPFAIL,
    body: () => TEMPFAIL,
    endOfMessage: () => ({ verdict: TEMPFAIL }),
    unknown: () => TEMPFAIL,
  }),
});

/**
 * Serves one filter definition on one socket. Events: 'connection' (id), 'connectionClosed' (id, reason), and
 * 'connectionRefused' (id) once a connection beyond `maxConnections` got its tempfail and is closed.
 */
export class MilterServer extends EventEmitter {
  private readonly server: Server;
  private readonly connections = new Map<string, Connection>();
  /** Connections beyond the limit, being answered with a tempfail; they do not count against it. */
  private readonly refused = new Map<string, Connection>();
  private nextId = 1;
  private draining = false;
  private boundAddress: MilterAddress | undefined;
  private readonly log: MilterLogger;
  /** Buffers for the body frames every connection writes back (see frame-pool.ts). */
  private readonly framePool = new FramePool();

  private constructor(
    private readonly definition: MilterDefinition,
    private readonly options: MilterServerOptions,
  ) {
    super();
    this.log = withContext(options.logger ?? silentLogger, { milter: definition.name });
    this.server = createServer((socket) => this.accept(socket));
  }

  /** Starts a server; resolves once it listens. */
  static async start(definition: MilterDefinition, options: MilterServerOptions): Promise<MilterServer> {
    const server = new MilterServer(definition, options);
    await server.listen(parseMilterAddress(options.listen));
    return server;
  }

  /** The address actually listened on (with the real port when 0 was asked), in Postfix's syntax. */
  get address(): string {
    if (this.boundAddress === undefined) throw new MilterUsageError('invalid-option', 'server is not listening');
    return formatMilterAddress(this.boundAddress);
  }

  /** Open MTA connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Messages being processed right now (between MAIL and the end of the message). */
  get transactionsInFlight(): number {
    let count = 0;
    for (const connection of this.connections.values()) if (connection.inTransaction) count++;
    return count;
  }

  /**
   * Of those, the messages whose body has passed the body pacer's threshold (large bodies); 0 without a pacer. A
   * pacer may pace only while other messages are in flight beside them.
   */
  get largeBodiesInFlight(): number {
    let count = 0;
    for (const connection of this.connections.values()) if (connection.largeBody) count++;
    return count;
  }

  /**
   * Graceful shutdown: stop accepting, close idle connections at once, let connections inside a
   * transaction finish it, and destroy whatever is still open after `timeout` ms (default 30 s).
   */
  async close(timeout = 30_000): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.refused.values()) connection.destroy('shutdown');
    for (const connection of this.connections.values()) connection.drain();
    const deadline = setTimeout(() => {
      for (const connection of this.connections.values()) connection.destroy('shutdown timeout');
    }, timeout);
    try {
      while (this.connections.size > 0) await new Promise((resolve) => this.once('connectionClosed', resolve));
    } finally {
      clearTimeout(deadline);
    }
    await closed;
    if (this.boundAddress?.kind === 'unix') await unlink(this.boundAddress.path).catch(() => undefined);
  }

  private async listen(address: MilterAddress): Promise<void> {
    if (address.kind === 'unix') await removeStaleSocket(address.path);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      const done = (): void => {
        this.server.off('error', reject);
        resolve();
      };
      if (address.kind === 'unix') listenPrivately(this.server, address.path, done);
      else this.server.listen({ port: address.port, host: address.host, ipv6Only: address.family === 6 }, done);
    });
    this.server.on('error', (error) => this.log.error('server error', { error: error.message }));
    if (address.kind === 'unix') {
      try {
        // Group first, then mode: until both are set the socket stays owner-only (see listenPrivately).
        const group = this.options.socketGroup;
        if (group !== undefined && (await lstat(address.path)).gid !== group) await chown(address.path, -1, group);
        await chmod(address.path, this.options.socketMode ?? SERVER_DEFAULTS.socketMode);
      } catch (error) {
        await new Promise((resolve) => this.server.close(resolve));
        throw new MilterUsageError('invalid-option', `cannot set the group or mode of ${address.path}: ${(error as Error).message}`);
      }
      this.boundAddress = address;
    } else {
      const bound = this.server.address();
      const port = typeof bound === 'object' && bound !== null ? bound.port : address.port;
      this.boundAddress = { ...address, port };
    }
    this.log.info('listening', { address: this.address });
  }

  private accept(socket: Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    const id = `c${this.nextId++}`;
    const limit = this.options.maxConnections ?? SERVER_DEFAULTS.maxConnections;
    if (this.connections.size >= limit) {
      // Refused connections cost little each, but a peer that never negotiates must not pile them up either.
      if (this.refused.size >= limit) {
        this.log.warn('connection limit reached twice over, closing at once', { conn: id, maxConnections: limit });
        socket.destroy();
        return;
      }
      this.log.warn('connection limit reached, answering tempfail and closing', { conn: id, maxConnections: limit });
      const refused = new Connection(id, socket, OVERLOADED, { ...this.options, refuse: true, framePool: this.framePool }, this.log, () => {
        this.refused.delete(id);
        this.emit('connectionRefused', id);
      });
      this.refused.set(id, refused);
      return;
    }
    const connection = new Connection(id, socket, this.definition, { ...this.options, framePool: this.framePool }, this.log, (reason) => {
      this.connections.delete(id);
      this.emit('connectionClosed', id, reason);
    });
    this.connections.set(id, connection);
    this.emit('connection', id);
  }
}

/**
 * Binds a unix socket that only its owner can connect to until `listen` sets its group and mode: the socket
 * file is created by the bind with the process's umask, and a umask that lets others write would let any local
 * user connect (and have mail decrypted or signed) in the moment before the chmod. Node binds a unix socket
 * synchronously inside `server.listen` when this process owns the socket, so the umask is narrowed for exactly
 * that call. (In a node:cluster worker the primary process binds, under its own umask.)
 */
function listenPrivately(server: Server, path: string, done: () => void): void {
  const previous = process.umask(0o177);
  try {
    server.listen(path, done);
  } finally {
    process.umask(previous);
  }
}

/** Removes a unix socket file left by a process that is gone; refuses to touch anything else. */
async function removeStaleSocket(path: string): Promise<void> {
  const stat = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (stat === undefined) return;
  if (!stat.isSocket()) throw new MilterUsageError('invalid-option', `${path} exists and is not a socket; not removing it`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) {
    // In a node:cluster worker the primary binds the socket once and shares it with every worker: the socket
    // is live because an earlier worker is listening on it. (Another program's socket still fails: the
    // primary's bind reports EADDRINUSE.)
    if (cluster.isWorker) return;
    throw new MilterUsageError('invalid-option', `another process is listening on ${path}`);
  }
  await unlink(path);
}

/** One MTA connection: frames in, session, replies out. */
interface ConnectionOptions extends MilterServerOptions {
  /** Close the connection once the first verdict after the negotiation is written (a connection beyond the limit). */
  refuse?: boolean;
  /** The server's buffers for body frames written back. */
  framePool: FramePool;
}

class Connection {
  private readonly decoder: FrameDecoder;
  private readonly session: MilterSession;
  private readonly log: MilterLogger;
  private readonly queue: Buffer[] = [];
  private busy = false;
  /** Body bytes of the current message so far, for {@link MilterServerOptions.bodyPacer}. */
  private bodyBytes = 0;
  private closing = false;
  private draining = false;
  private closeReason = 'closed by MTA';

  constructor(
    readonly id: string,
    private readonly socket: Socket,
    definition: MilterDefinition,
    private readonly options: ConnectionOptions,
    serverLog: MilterLogger,
    private readonly onClosed: (reason: string) => void,
  ) {
    const peer = socket.remoteAddress === undefined ? 'unix' : `${socket.remoteAddress}:${socket.remotePort}`;
    this.log = withContext(serverLog, { conn: id });
    this.decoder = new FrameDecoder({ maxFrameSize: options.maxFrameSize ?? SERVER_DEFAULTS.maxFrameSize });
    this.session = new MilterSession(definition, {
      connectionId: id,
      logger: serverLog,
      maxBufferedBody: options.maxBufferedBody ?? SERVER_DEFAULTS.maxBufferedBody,
      ...(options.spoolDirectory === undefined ? {} : { spoolDirectory: options.spoolDirectory }),
    });
    socket.setNoDelay(true);
    socket.setTimeout(options.idleTimeout ?? SERVER_DEFAULTS.idleTimeout);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => this.peerEnded());
    socket.on('timeout', () => this.destroy('idle timeout'));
    socket.on('error', (error) => {
      this.closeReason = `socket error: ${error.message}`;
    });
    socket.on('close', () => void this.closed());
    this.log.debug('connection opened', { peer });
  }

  get inTransaction(): boolean {
    return this.session.inTransaction || this.busy;
  }

  /** Whether the message in flight has a body past the pacer's threshold (until its end of message is answered). */
  get largeBody(): boolean {
    const pacer = this.options.bodyPacer;
    return pacer !== undefined && this.inTransaction && this.bodyBytes > pacer.aboveBytes;
  }

  /** Shutdown: close now if between messages, else after the current message. */
  drain(): void {
    this.draining = true;
    if (!this.inTransaction && this.queue.length === 0) this.destroy('shutdown');
  }

  /** Closes after what was written has left (a plain destroy could drop a reply still buffered). */
  finish(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.closeReason = reason;
    this.socket.end(() => this.socket.destroy());
  }

  destroy(reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.closeReason = reason;
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.closing) return;
    this.queue.push(chunk);
    // Back-pressure: stop reading while commands are being processed, so a fast MTA cannot make us queue.
    if (this.busy) this.socket.pause();
    else void this.process();
  }

  private peerEnded(): void {
    try {
      this.decoder.end();
    } catch (error) {
      this.protocolError(error as MilterProtocolError);
      return;
    }
    this.destroy(this.session.finished ? 'quit' : 'closed by MTA');
  }

  private async process(): Promise<void> {
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.closing) {
        let wait: Promise<void> | undefined;
        for (const frame of this.decoder.push(this.queue.shift() as Buffer)) {
          const command = decodeCommand(frame);
          // Counted before the command runs (a message's count restarts at MAIL); takers go in order, so the last
          // wait is the one to keep.
          wait = this.pace(command) ?? wait;
          const replied = await this.execute(command);
          if (this.closing) return;
          if (this.options.refuse === true && replied && command.kind !== 'optneg') {
            this.finish('connection limit');
            return;
          }
          if (this.session.finished) {
            this.destroy('quit');
            return;
          }
        }
        // The wait for the pace of large bodies comes once the bytes read have been handled, with the socket
        // paused: a body chunk held through the wait would outlive the young collections, and the old generation's
        // collections that then free it pause the event loop for every connection.
        if (wait !== undefined) {
          this.socket.pause();
          await wait;
        }
      }
    } catch (error) {
      if (error instanceof MilterProtocolError) this.protocolError(error);
      else {
        this.log.error('internal error', { error: error instanceof Error ? error.message : String(error) });
        this.destroy('internal error');
      }
      return;
    } finally {
      this.busy = false;
    }
    if (this.draining && !this.session.inTransaction) this.destroy('shutdown');
    else this.socket.resume();
  }

  /** Counts the body bytes of the message and, past the pacer's threshold, takes them: the wait for their turn, if any. */
  private pace(command: Command): Promise<void> | undefined {
    const pacer = this.options.bodyPacer;
    if (pacer === undefined) return undefined;
    if (command.kind !== 'body') {
      // Not at end of message: the message stays a large one while its new body is written back.
      if (command.kind === 'mail' || command.kind === 'abort') this.bodyBytes = 0;
      return undefined;
    }
    const before = this.bodyBytes;
    this.bodyBytes += command.chunk.length;
    if (this.bodyBytes <= pacer.aboveBytes) return undefined;
    return pacer.take(this.bodyBytes - Math.max(before, pacer.aboveBytes));
  }

  /** Runs one command and writes its replies; returns whether there were any. */
  private async execute(command: Command): Promise<boolean> {
    const replies = this.session.handle(command);
    let next: Promise<IteratorResult<Response, void>> = replies.next();
    let first: IteratorResult<Response, void>;
    if (command.kind === 'eom') {
      // Keep the MTA's content timeout from firing while a slow filter works on the message.
      const interval = this.options.progressInterval ?? SERVER_DEFAULTS.progressInterval;
      const timer = setInterval(() => this.socket.write(PROGRESS_FRAME), interval);
      try {
        first = await next;
      } finally {
        clearInterval(timer);
      }
    } else {
      first = await next;
    }
    const limit = this.options.writeBatchBytes ?? SERVER_DEFAULTS.writeBatchBytes;
    let batch: OutgoingPart[] = [];
    let batchBytes = 0;
    for (let result = first; !result.done; result = await next) {
      const response = result.value;
      if (response.kind === 'replaceBody') {
        // Copied into a reusable frame, so the chunk itself is garbage at once (see frame-pool.ts).
        const { frame, release } = this.options.framePool.frame(ResponseCode.ReplaceBody, response.chunk);
        batch.push({ buffer: frame, release });
        batchBytes += frame.length;
      } else {
        const buffer = encodeResponse(response);
        batch.push({ buffer });
        batchBytes += buffer.length;
      }
      if (batchBytes >= limit) {
        await this.write(batch, batchBytes);
        batch = [];
        batchBytes = 0;
      }
      next = replies.next();
    }
    if (batchBytes > 0) await this.write(batch, batchBytes);
    return !first.done;
  }

  /**
   * Writes the buffers as one write, so that over TCP no segment boundary lets Nagle's algorithm or a delayed
   * ACK hold the rest. Small batches (the usual replies) are joined into one buffer, the cheapest write there
   * is; large ones (body frames) leave corked, in one gathering system call, and each pooled frame goes back to
   * its pool once the socket has written it.
   */
  private write(parts: readonly OutgoingPart[], bytes: number): Promise<void> {
    if (this.closing || this.socket.destroyed) {
      for (const part of parts) part.release?.();
      return Promise.resolve();
    }
    if (parts.length === 1 || bytes < GATHER_MIN_BYTES) {
      const only = parts.length === 1 ? (parts[0] as OutgoingPart) : undefined;
      if (only !== undefined) this.socket.write(only.buffer, only.release);
      else {
        this.socket.write(Buffer.concat(parts.map((part) => part.buffer), bytes));
        for (const part of parts) part.release?.();
      }
    } else {
      this.socket.cork();
      // Each pooled frame goes back to its pool once the socket is done with it (written, or dropped with the socket).
      for (const part of parts) this.socket.write(part.buffer, part.release);
      this.socket.uncork();
    }
    if (!this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  private protocolError(error: MilterProtocolError): void {
    this.log.warn('protocol error, closing connection', { code: error.code, reason: error.message });
    this.destroy(`protocol error: ${error.code}`);
  }

  private async closed(): Promise<void> {
    this.closing = true;
    try {
      await this.session.dispose();
    } catch (error) {
      this.log.error('cleanup failed', { error: error instanceof Error ? error.message : String(error) });
    }
    this.log.debug('connection closed', { reason: this.closeReason });
    this.onClosed(this.closeReason);
  }
}
