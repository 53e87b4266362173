/**
 * Sendmail instances for tests, beside Postfix: the unpacked sendmail-bin (a package that conflicts with
 * Postfix, so it is never installed) runs in the foreground (`-bD`) with a sendmail.cf made by m4 from a
 * templated .mc, relaying everything to one loopback port.
 *
 * It runs in a private mount + UTS namespace: the host name is set to a dotted name listed in a private
 * /etc/hosts (otherwise sendmail sleeps 60 s at start trying to qualify it), and /dev is replaced by a
 * per-instance copy whose `log` is a socket this process listens on, so sendmail's syslog lines reach this
 * instance only, and parallel tests never share a global /dev/log.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { HarnessError } from './errors.ts';
import { makeInstanceDir, removeInstanceDir } from './instance-dir.ts';
import {
  findProcesses,
  killProcessesNow,
  mountNamespace,
  ownsListeningPort,
  processAlive,
  registerExitCleanup,
  runCommand,
  startDaemon,
  terminateProcesses,
  waitFor,
  type DaemonProcess,
} from './processes.ts';

/** How long sendmail gets to end after SIGTERM before SIGKILL (it normally takes milliseconds). */
const STOP_GRACE_MS = 3_000;

/** Where sendmail-bin is unpacked (scripts/install-debian.sh); env `MUSE_SENDMAIL_ROOT` overrides it. */
export function sendmailRoot(): string {
  return process.env['MUSE_SENDMAIL_ROOT'] ?? '/opt/muse-sendmail';
}

/** One `INPUT_MAIL_FILTER` entry. */
export interface SendmailMilter {
  /** Filter name (letters, digits, '_', '-'). */
  readonly name: string;
  /** Sendmail socket syntax, e.g. `inet:9903@127.0.0.1` or `unix:/path/sock`. */
  readonly socket: string;
  /** `F=` flags: `T` tempfail or `R` reject when the filter is unavailable; '' or absent: skip it. */
  readonly flags?: string;
  /** `T=` timeouts, e.g. `C:10s;S:30s;R:30s;E:60s`. */
  readonly timeouts?: string;
}

/** Domains a Sendmail instance sends elsewhere than to its relay port. */
export interface SendmailRoute {
  /** Domain names (lower-case letters, digits, '-' and '.'). */
  readonly domains: readonly string[];
  /** Their mail goes to 127.0.0.1 on this port. */
  readonly port: number;
}

/** Options of {@link SendmailInstance.start}. */
export interface SendmailOptions {
  /** Port of the SMTP daemon on 127.0.0.1. */
  readonly smtpPort: number;
  /** All mail is relayed to 127.0.0.1 on this port (the sink, or another MTA), but for {@link route}'s domains. */
  readonly relayPort: number;
  /** Mail for these domains goes to 127.0.0.1 on `port` instead (a mailertable, rendered into `{{ROUTES}}`). */
  readonly route?: SendmailRoute;
  /** Milters, rendered into the `{{MILTERS}}` placeholder. */
  readonly milters?: readonly SendmailMilter[];
  /** The .mc template (default {@link DEFAULT_SENDMAIL_MC}); placeholders are listed at {@link renderSendmailMc}. */
  readonly mcTemplate?: string;
  /** Extra placeholder values for a caller's template (they may also replace the built-in ones). */
  readonly vars?: Readonly<Record<string, string>>;
  /** Host name inside the namespace and `confDOMAIN_NAME`; default `sm.mta.test`. */
  readonly hostname?: string;
  /** Bound on the start (default 20 s). */
  readonly startTimeoutMs?: number;
}

/**
 * The default .mc: relay everything to `[127.0.0.1]:{{RELAY_PORT}}` but what `{{ROUTES}}` sends elsewhere, listen
 * on `127.0.0.1:{{PORT}}` only (`no_default_msa`, else it also listens on 587 on every interface), no DNS
 * (`nocanonify`, files-only service switch, unresolvable sender domains accepted), background delivery, log level
 * 14 (every milter step is logged), and no load-average limits: by default sendmail refuses connections (and stops
 * delivering) once the load average passes a multiple of the core count, which a busy test machine reaches.
 */
export const DEFAULT_SENDMAIL_MC = `include(\`/usr/share/sendmail/cf/m4/cf.m4')dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`{{HOSTNAME}}')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confSERVICE_SWITCH_FILE', \`{{SERVICE_SWITCH}}')dnl
define(\`QUEUE_DIR', \`{{QUEUE_DIR}}')dnl
define(\`confPID_FILE', \`{{PID_FILE}}')dnl
define(\`STATUS_FILE', \`{{STATUS_FILE}}')dnl
define(\`confHELP_FILE', \`{{HELP_FILE}}')dnl
define(\`confLOG_LEVEL', \`14')dnl
define(\`confMILTER_LOG_LEVEL', \`14')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confDELIVERY_MODE', \`background')dnl
define(\`confREFUSE_LA', \`10000')dnl
define(\`confQUEUE_LA', \`10000')dnl
define(\`confDELAY_LA', \`0')dnl
undefine(\`ALIAS_FILE')dnl
FEATURE(\`nocanonify')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`accept_unqualified_senders')dnl
FEATURE(\`no_default_msa')dnl
define(\`SMART_HOST', \`relay:[127.0.0.1]')dnl
define(\`RELAY_MAILER_ARGS', \`TCP $h {{RELAY_PORT}}')dnl
{{ROUTES}}DAEMON_OPTIONS(\`Port={{PORT}}, Addr=127.0.0.1, Name=MTA')dnl
{{MILTERS}}MAILER(\`local')dnl
MAILER(\`smtp')dnl
`;

/** `INPUT_MAIL_FILTER` lines for `milters` (one per line, each ending in `dnl` and a newline). */
export function sendmailMilterLines(milters: readonly SendmailMilter[]): string {
  return milters
    .map((milter) => {
      // Quotes, commas or newlines would break out of the m4 quoting or the equate list.
      const equateText = `${milter.socket}${milter.flags ?? ''}${milter.timeouts ?? ''}`;
      if (!/^[A-Za-z0-9_-]+$/.test(milter.name) || /[`',\n]/.test(equateText)) {
        throw new HarnessError('INVALID_ARGUMENT', `bad milter definition ${JSON.stringify(milter)}`);
      }
      const equates = [`S=${milter.socket}`];
      if (milter.flags !== undefined && milter.flags !== '') equates.push(`F=${milter.flags}`);
      if (milter.timeouts !== undefined && milter.timeouts !== '') equates.push(`T=${milter.timeouts}`);
      return `INPUT_MAIL_FILTER(\`${milter.name}', \`${equates.join(', ')}')dnl\n`;
    })
    .join('');
}

/**
 * The `.mc` lines and the mailertable for `route`: the mailertable sends each domain to the esmtp mailer at
 * [127.0.0.1] (Sendmail looks it up before the smart host), and the esmtp mailer connects to the route's port (the
 * relay mailer, the smart host's, keeps its own). Empty without a route.
 */
function sendmailRouteLines(route: SendmailRoute | undefined, mailertablePath: string): { mc: string; mailertable: string } {
  if (route === undefined) return { mc: '', mailertable: '' };
  // A blank or a quote would break out of the mailertable's columns or the m4 quoting.
  if (route.domains.length === 0 || route.domains.some((domain) => !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(domain)) || /[\s`']/.test(mailertablePath)) {
    throw new HarnessError('INVALID_ARGUMENT', `bad route ${JSON.stringify(route)} or mailertable path ${JSON.stringify(mailertablePath)}`);
  }
  // A text map answers with column 0, the key itself, unless told which column holds the value (-v1).
  return {
    mc: `FEATURE(\`mailertable', \`text -k0 -v1 ${mailertablePath}')dnl\ndefine(\`ESMTP_MAILER_ARGS', \`TCP $h ${route.port}')dnl\n`,
    mailertable: route.domains.map((domain) => `${domain} esmtp:[127.0.0.1]\n`).join(''),
  };
}

/**
 * Replaces every `{{NAME}}` in an .mc template. The instance provides `DIR`, `HOSTNAME`, `PORT`,
 * `RELAY_PORT`, `ROUTES`, `QUEUE_DIR`, `PID_FILE`, `STATUS_FILE`, `HELP_FILE`, `SERVICE_SWITCH` and `MILTERS`.
 * A placeholder without a value throws `INVALID_ARGUMENT`, so a template typo cannot yield a silently wrong .cf.
 */
export function renderSendmailMc(template: string, vars: Readonly<Record<string, string>>): string {
  return template.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_whole, name: string) => {
    const value = vars[name];
    if (value === undefined) throw new HarnessError('INVALID_ARGUMENT', `no value for {{${name}}} in the sendmail .mc`);
    return value;
  });
}

/**
 * Run inside `unshare --mount --uts` (mounts are private there): private hosts and resolv.conf, a /dev made
 * of the instance's `dev` directory (holding the log socket) with the real device nodes sendmail may open
 * bound into it, the host name, then sendmail itself (exec, so the daemon keeps the spawned pid).
 */
const NAMESPACE_SCRIPT = `set -e
dir=$1; name=$2; shift 2
mount --bind "$dir/hosts" /etc/hosts
mount --bind "$dir/resolv.conf" /etc/resolv.conf
for node in null zero full random urandom; do
  : > "$dir/dev/$node"
  mount --bind "/dev/$node" "$dir/dev/$node"
done
mount --rbind "$dir/dev" /dev
hostname "$name"
exec "$@"
`;

/**
 * Collects the syslog records sent to the instance's /dev/log. Node has no Unix datagram sockets, but glibc's
 * syslog() retries with a stream socket when the datagram connect fails with EPROTOTYPE; records then end
 * in NUL.
 */
class SyslogCatcher {
  readonly lines: string[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((socket) => {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      const records = (pending + chunk.toString('utf8')).split(/\0|\n/);
      pending = records.pop() ?? '';
      this.lines.push(...records.filter((record) => record !== ''));
    });
  });

  /** Listens on the socket path `path`. */
  async listen(path: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(path, resolve);
    });
  }

  /** Drops the connections (a killed sendmail may leave one half-open) and stops listening. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A running sendmail; create with {@link SendmailInstance.start}, always {@link stop} it. */
export class SendmailInstance {
  /** The generated sendmail.cf. */
  readonly cfPath: string;
  private readonly syslog = new SyslogCatcher();
  private daemon: DaemonProcess | undefined;
  private namespace: string | undefined;
  private readonly unregisterExitCleanup: () => void;
  private stopped = false;

  private constructor(
    /** The instance directory (removed by {@link stop}). */
    readonly dir: string,
    /** The SMTP port on 127.0.0.1. */
    readonly smtpPort: number,
  ) {
    this.cfPath = join(dir, 'sendmail.cf');
    this.unregisterExitCleanup = registerExitCleanup(() => {
      killProcessesNow(this.processes());
      removeInstanceDir(dir);
    });
  }

  /**
   * Writes the .mc and the files sendmail reads, makes the .cf with m4 (anything m4 prints on stderr counts
   * as a failure), starts `sendmail -bD -q10s` and waits until it listens on its port. On failure everything
   * is cleaned up and `START_FAILED` is thrown with m4's or sendmail's output and the syslog lines so far.
   */
  static async start(options: SendmailOptions): Promise<SendmailInstance> {
    const hostname = options.hostname ?? 'sm.mta.test';
    const timeoutMs = options.startTimeoutMs ?? 20_000;
    const instance = new SendmailInstance(makeInstanceDir('sendmail'), options.smtpPort);
    const { dir } = instance;
    try {
      const queueDir = join(dir, 'queue');
      mkdirSync(queueDir, { mode: 0o700 });
      mkdirSync(join(dir, 'dev'));
      symlinkSync('/proc/self/fd', join(dir, 'dev', 'fd'));
      writeFileSync(join(dir, 'hosts'), `127.0.0.1 ${hostname} ${hostname.split('.')[0]} localhost\n::1 localhost\n`);
      // Nothing answers on 127.0.0.1:53, so a stray lookup fails at once instead of leaving loopback.
      writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n');
      writeFileSync(join(dir, 'service.switch'), 'hosts files\naliases files\n');
      const routes = sendmailRouteLines(options.route, join(dir, 'mailertable'));
      if (options.route !== undefined) writeFileSync(join(dir, 'mailertable'), routes.mailertable);
      const vars: Record<string, string> = {
        DIR: dir,
        HOSTNAME: hostname,
        PORT: String(options.smtpPort),
        RELAY_PORT: String(options.relayPort),
        ROUTES: routes.mc,
        QUEUE_DIR: queueDir,
        PID_FILE: join(dir, 'sendmail.pid'),
        STATUS_FILE: join(dir, 'sendmail.st'),
        HELP_FILE: join(sendmailRoot(), 'etc/mail/helpfile'),
        SERVICE_SWITCH: join(dir, 'service.switch'),
        MILTERS: sendmailMilterLines(options.milters ?? []),
        ...options.vars,
      };
      const mc = renderSendmailMc(options.mcTemplate ?? DEFAULT_SENDMAIL_MC, vars);
      writeFileSync(join(dir, 'sendmail.mc'), mc);
      const m4 = await runCommand('m4', [join(dir, 'sendmail.mc')], { timeoutMs: 20_000 });
      if (m4.code !== 0 || m4.stderr !== '') throw new Error(`m4 exited with ${m4.code}: ${m4.stderr}`);
      writeFileSync(instance.cfPath, m4.stdout);

      await instance.syslog.listen(join(dir, 'dev', 'log'));
      const binary = join(sendmailRoot(), 'usr/libexec/sendmail/sendmail');
      const daemon = await startDaemon('unshare', [
        '--mount',
        '--uts',
        'sh',
        '-c',
        NAMESPACE_SCRIPT,
        'sh',
        dir,
        hostname,
        binary,
        '-C',
        instance.cfPath,
        '-bD',
        '-q10s',
      ]);
      instance.daemon = daemon;
      // Ownership, not a connect probe: a program already on the port must not pass for sendmail (which
      // would keep retrying its bind and log 'cannot bind').
      await waitFor(
        () => {
          const status = daemon.exitStatus();
          if (status !== undefined) throw new Error(`sendmail exited (code ${status.code}, signal ${status.signal})`);
          return ownsListeningPort(daemon.pid, options.smtpPort) ? true : undefined;
        },
        { timeoutMs, what: `sendmail listening on 127.0.0.1:${options.smtpPort}` },
      );
      // Every process of this instance shares the namespace unshare made: that is how stop finds them all.
      instance.namespace = mountNamespace(daemon.pid);
      return instance;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const details = `output:\n${instance.daemon?.output() ?? ''}\nlog:\n${instance.readLog()}`;
      // No grace: a sendmail that failed to bind sleeps between retries and would sit out SIGTERM.
      await instance.shutdown(0);
      throw new HarnessError('START_FAILED', `sendmail instance ${dir} did not start: ${reason}\n${details}`, {
        cause: error,
      });
    }
  }

  /** Sendmail's syslog lines so far (`<pri>date sendmail[pid]: text`), one per line. */
  readLog(): string {
    return this.syslog.lines.map((line) => `${line}\n`).join('');
  }

  /** Waits until a log line matches `pattern`, and returns that line. Rejects with `TIMEOUT`. */
  waitForLog(pattern: RegExp, timeoutMs: number): Promise<string> {
    return waitFor(() => this.syslog.lines.find((line) => pattern.test(line)), {
      timeoutMs,
      what: `a sendmail log line matching ${pattern}`,
    });
  }

  /** Stops sendmail and every child in its namespace (bounded), closes the log socket, removes the directory. */
  stop(): Promise<void> {
    return this.shutdown(STOP_GRACE_MS);
  }

  /** {@link stop} with `graceMs` between SIGTERM and SIGKILL. Safe to call twice. */
  private async shutdown(graceMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.daemon?.stop(graceMs);
    await terminateProcesses(this.processes(), graceMs);
    await this.syslog.close();
    removeInstanceDir(this.dir);
    this.unregisterExitCleanup();
  }

  /**
   * Pids of this instance's live processes: those in its mount namespace (until that is known, the
   * started process).
   */
  processes(): number[] {
    const namespace = this.namespace;
    if (namespace === undefined) return this.daemon === undefined || !processAlive(this.daemon.pid) ? [] : [this.daemon.pid];
    return findProcesses((pid) => processAlive(pid) && mountNamespace(pid) === namespace);
  }
}
