/**
 * Independent Postfix instances for tests: `postfix -c DIR` with its own config, queue, data directory and
 * maillog under /var/lib/muse-test/postfix-XXXXXX, listening for SMTP on 127.0.0.1 only. No default
 * instance, postmulti or systemd is needed when running as root.
 */
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HarnessError } from './errors.ts';
import { tcpPortFree } from './free-port.ts';
import { makeInstanceDir, removeInstanceDir } from './instance-dir.ts';
import {
  environmentHas,
  findProcesses,
  killProcessesNow,
  processAlive,
  registerExitCleanup,
  runCommand,
  terminateProcesses,
  waitFor,
  waitForPort,
  type CommandResult,
} from './processes.ts';

const POSTFIX = '/usr/sbin/postfix';
const POSTFIX_SENDMAIL = '/usr/sbin/sendmail';
const MASTER_CF_PROTO = '/etc/postfix/master.cf.proto';
/** A first start creates the queue tree (about 2 s); allow for a slow CI machine. */
const DEFAULT_START_TIMEOUT_MS = 30_000;
/** The master normally exits within milliseconds of `postfix stop`. */
const STOP_WAIT_MS = 5_000;

/** Options of {@link PostfixInstance.start}. */
export interface PostfixOptions {
  /** Port of the SMTP listener on 127.0.0.1 (the caller picks it from its own range). */
  readonly smtpPort: number;
  /**
   * main.cf settings added to, or replacing, the defaults of {@link postfixMainCf}: `smtpd_milters`,
   * `non_smtpd_milters`, `transport_maps`, `relay_domains`, `milter_protocol`, `milter_default_action`,
   * milter timeouts, `milter_macro_daemon_name`, …
   */
  readonly settings?: Readonly<Record<string, string>>;
  /** Lines appended to master.cf, e.g. a second smtpd without milters on another port. */
  readonly masterLines?: readonly string[];
  /** Bound on `postfix start`, and again on the wait for the SMTP port (default 30 s each). */
  readonly startTimeoutMs?: number;
}

/** Where an instance keeps its files (absolute paths; the maillog must be below /var). */
export interface PostfixPaths {
  readonly queueDir: string;
  readonly dataDir: string;
  readonly maillog: string;
}

/**
 * The main.cf text: a loopback-only relay host with no local delivery, no DNS, no TLS, no chroot, short
 * retry times (so deferred mail is retried within a test), then `settings` on top (same keys replaced in
 * place). Values are written literally; Postfix expands `$name` itself.
 */
export function postfixMainCf(paths: PostfixPaths, settings: Readonly<Record<string, string>> = {}): string {
  const merged: Record<string, string> = {
    compatibility_level: '3.6',
    queue_directory: paths.queueDir,
    data_directory: paths.dataDir,
    maillog_file: paths.maillog,
    myhostname: 'postfix.mta.test',
    mydestination: '',
    local_recipient_maps: '',
    alias_maps: '',
    alias_database: '',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    smtpd_relay_restrictions: 'permit_mynetworks, permit_auth_destination, reject',
    relay_domains: '',
    smtp_dns_support_level: 'disabled',
    smtp_host_lookup: 'native',
    smtp_tls_security_level: 'none',
    smtpd_tls_security_level: 'none',
    queue_run_delay: '5s',
    minimal_backoff_time: '5s',
    maximal_backoff_time: '10s',
    delay_warning_time: '0',
    biff: 'no',
    ...settings,
  };
  return Object.entries(merged)
    .map(([name, value]) => {
      if (!/^[A-Za-z0-9_.-]+$/.test(name) || /[\r\n]/.test(value)) {
        throw new HarnessError('INVALID_ARGUMENT', `bad main.cf setting ${JSON.stringify(name)} = ${JSON.stringify(value)}`);
      }
      return `${name} = ${value}\n`;
    })
    .join('');
}

/**
 * The master.cf text from Debian's master.cf.proto: every chroot column set to `n` (Debian's `y` needs a
 * jail that only the init script builds), the `smtp inet` listener moved to 127.0.0.1:`smtpPort`, and
 * `extraLines` appended.
 */
export function postfixMasterCf(proto: string, smtpPort: number, extraLines: readonly string[] = []): string {
  let listeners = 0;
  const lines = proto.split('\n').map((line) => {
    if (line === '' || line.startsWith('#') || /^\s/.test(line)) return line;
    const unjailed = line.replace(/^(\S+\s+\S+\s+\S+\s+\S+\s+)y(\s)/, '$1n$2');
    if (!/^smtp\s+inet\s/.test(unjailed)) return unjailed;
    listeners++;
    return unjailed.replace(/^smtp/, `127.0.0.1:${smtpPort}`);
  });
  if (listeners !== 1) {
    throw new HarnessError('START_FAILED', `${MASTER_CF_PROTO}: expected one "smtp inet" line, found ${listeners}`);
  }
  return `${lines.join('\n').replace(/\n*$/, '\n')}${extraLines.map((line) => `${line}\n`).join('')}`;
}

/** A running Postfix instance; create with {@link PostfixInstance.start}, always {@link stop} it. */
export class PostfixInstance {
  /** The config directory, passed as `-c` / `-C` (main.cf, master.cf). */
  readonly configDir: string;
  /** The queue directory. */
  readonly queueDir: string;
  /** The maillog file (written by postlogd). */
  readonly maillogPath: string;
  private readonly unregisterExitCleanup: () => void;
  private stopped = false;

  private constructor(
    /** The instance directory (removed by {@link stop}). */
    readonly dir: string,
    /** The SMTP listener's port on 127.0.0.1. */
    readonly smtpPort: number,
  ) {
    this.configDir = join(dir, 'etc');
    this.queueDir = join(dir, 'spool');
    this.maillogPath = join(dir, 'postfix.log');
    this.unregisterExitCleanup = registerExitCleanup(() => {
      killProcessesNow(this.processes());
      removeInstanceDir(dir);
    });
  }

  /**
   * Creates the instance directory and config, runs `postfix start` and waits until the SMTP port answers.
   * On failure everything is cleaned up and `START_FAILED` is thrown with the maillog and the output of
   * `postfix check` (which prints only to a tty, hence run under `script`).
   */
  static async start(options: PostfixOptions): Promise<PostfixInstance> {
    const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const instance = new PostfixInstance(makeInstanceDir('postfix'), options.smtpPort);
    try {
      mkdirSync(instance.configDir);
      // Postfix creates the data directory itself, but not the queue directory.
      mkdirSync(instance.queueDir);
      const paths = { queueDir: instance.queueDir, dataDir: join(instance.dir, 'data'), maillog: instance.maillogPath };
      writeFileSync(join(instance.configDir, 'main.cf'), postfixMainCf(paths, options.settings));
      const proto = readFileSync(MASTER_CF_PROTO, 'utf8');
      writeFileSync(join(instance.configDir, 'master.cf'), postfixMasterCf(proto, options.smtpPort, options.masterLines));
      const started = await instance.postfix(['start'], timeoutMs);
      if (started.code !== 0) {
        throw new Error(`postfix start exited with ${started.code}: ${started.stdout}${started.stderr}`);
      }
      await waitForPort(options.smtpPort, { timeoutMs });
      return instance;
    } catch (error) {
      const details = await instance.failureDetails();
      await instance.stop();
      // Postfix's master may die of a port taken meanwhile before its log line is written ("mail system startup
      // failed" is then all there is): a port another program holds now says so, and the caller retries with fresh
      // ports (isAddressInUse).
      const taken = await takenPorts([options.smtpPort, ...masterPorts(options.masterLines ?? [])]);
      const reason = `${error instanceof Error ? error.message : String(error)}${taken.length > 0 ? ` (address already in use: port ${taken.join(', ')} held by another program)` : ''}`;
      throw new HarnessError('START_FAILED', `Postfix instance ${instance.dir} did not start: ${reason}\n${details}`, {
        cause: error,
      });
    }
  }

  /** Runs `postfix -c DIR flush` (deliver deferred mail now); throws `COMMAND_FAILED` if it fails. */
  async flush(): Promise<void> {
    const result = await this.postfix(['flush'], 10_000);
    if (result.code !== 0) {
      throw new HarnessError('COMMAND_FAILED', `postfix flush exited with ${result.code}: ${result.stdout}${result.stderr}`);
    }
  }

  /** The maillog so far ('' before Postfix wrote it). */
  readMaillog(): string {
    try {
      return readFileSync(this.maillogPath, 'utf8');
    } catch {
      return '';
    }
  }

  /** Waits until a maillog line matches `pattern`, and returns that line. Rejects with `TIMEOUT`. */
  waitForMaillog(pattern: RegExp, timeoutMs: number): Promise<string> {
    return waitFor(() => this.readMaillog().split('\n').find((line) => pattern.test(line)), {
      timeoutMs,
      what: `a line matching ${pattern} in ${this.maillogPath}`,
    });
  }

  /**
   * Submits mail locally through this instance (the `non_smtpd_milters` path): runs
   * `/usr/sbin/sendmail -C DIR ...args` with `stdin` as the message. Returns the exit status and output.
   */
  sendmailCommand(args: readonly string[], stdin: string | Uint8Array, timeoutMs = 30_000): Promise<CommandResult> {
    return runCommand(POSTFIX_SENDMAIL, ['-C', this.configDir, ...args], { input: stdin, timeoutMs });
  }

  /**
   * Runs `postfix stop`, waits (bounded) for the instance's processes to end, kills any left over, and
   * removes the instance directory. Safe to call twice.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.postfix(['stop'], 10_000).catch(() => undefined);
    await waitFor(() => (this.processes().length === 0 ? true : undefined), {
      timeoutMs: STOP_WAIT_MS,
      what: `processes of ${this.dir} ending`,
    }).catch(() => undefined);
    await terminateProcesses(this.processes(), 2_000);
    removeInstanceDir(this.dir);
    this.unregisterExitCleanup();
  }

  /** Pids of this instance's live processes (found by the MAIL_CONFIG that Postfix gives every daemon). */
  processes(): number[] {
    const entry = `MAIL_CONFIG=${this.configDir}`;
    return findProcesses((pid) => processAlive(pid) && environmentHas(pid, entry));
  }

  private postfix(args: readonly string[], timeoutMs: number): Promise<CommandResult> {
    return runCommand(POSTFIX, ['-c', this.configDir, ...args], { timeoutMs });
  }

  /** The maillog and `postfix check` output, for a start failure. */
  private async failureDetails(): Promise<string> {
    const check = await runCommand('script', ['-qec', `${POSTFIX} -c '${this.configDir}' check`, '/dev/null'], {
      timeoutMs: 20_000,
    }).catch((error: unknown) => ({ code: null, stdout: `(could not run: ${String(error)})`, stderr: '' }));
    return `postfix check (exit ${check.code}):\n${check.stdout}${check.stderr}\nmaillog:\n${this.readMaillog()}`;
  }
}

/** The TCP ports the services of `lines` (master.cf lines) listen on: a service name `PORT` or `HOST:PORT`. */
function masterPorts(lines: readonly string[]): number[] {
  const ports: number[] = [];
  for (const line of lines) {
    const service = /^(?:[\d.]+:)?(\d+)\s+inet\s/.exec(line);
    if (service !== null) ports.push(Number(service[1]));
  }
  return ports;
}

/** Those of `ports` another program holds now. */
async function takenPorts(ports: readonly number[]): Promise<number[]> {
  const free = await Promise.all(ports.map((port) => tcpPortFree(port)));
  return ports.filter((_, i) => free[i] === false);
}
