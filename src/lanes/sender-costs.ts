/**
 * Which lane an inbound message is opened in. Each sender (the SMTP client's address, or the milter connection
 * when there is none) has an account of the CPU its messages cost to open, decaying with a time constant of
 * {@link ACCOUNT_SECONDS}: divided by that time, it is the share of one core the sender has been taking lately.
 * A sender above its share (`limits.backgroundAboveCpuShare`) has its next messages opened in the background lane,
 * at the lowest CPU priority; it comes back once its share falls below half of that, so a sender near the line
 * does not go back and forth with every message. A message whose body is larger than the large-message threshold
 * goes to the background whoever sends it: it can be slow there without anyone waiting behind it.
 *
 * What counts is CPU per second, not per message: a stream of cheap messages sent back to back takes as much as
 * a few costly ones, and neither gets more than its share in the foreground. A cost is known only once a message
 * is open, so a sender's messages being opened at once are counted too: beyond {@link FOREGROUND_IN_FLIGHT} of them,
 * its next goes to the background, and a burst of parallel sessions from a sender not yet seen cannot fill the
 * foreground before its first cost is in. A sender whose message stopped a thread (a crash) is charged as if it
 * had taken twice its share.
 */
import { LRUCache } from 'lru-cache';

/** The two lanes: `foreground` at normal priority, `background` at the lowest (nice 19). */
export type Lane = 'foreground' | 'background';

/** How many senders are remembered; the least recently seen is forgotten first (it starts again at zero). */
export const SENDER_ACCOUNTS = 10_000;

/** The time constant of an account's decay (seconds): about how far back "lately" reaches. */
export const ACCOUNT_SECONDS = 2;

/** A sender's messages opened at once beyond which the next one goes to the background. */
export const FOREGROUND_IN_FLIGHT = 2;

interface Account {
  /** CPU milliseconds, as of {@link at}. */
  load: number;
  at: number;
  background: boolean;
  /** Messages of the sender being opened now. */
  inFlight: number;
}

/** The accounts of the senders seen lately. */
export class SenderCosts {
  readonly #accounts = new LRUCache<string, Account>({ max: SENDER_ACCOUNTS });
  readonly #clock: () => number;

  /**
   * @param share a sender taking more than this share of one core lately goes to the background
   * @param largeAboveBytes a message body larger than this is opened in the background whoever sends it
   * @param clock milliseconds (tests give their own)
   */
  constructor(
    public share: number,
    readonly largeAboveBytes: number,
    clock: () => number = () => performance.now(),
  ) {
    this.#clock = clock;
  }

  /** The lane for a message of `bodyBytes` from `sender`. */
  laneFor(sender: string, bodyBytes: number): Lane {
    const account = this.#settled(sender);
    if (account !== undefined) {
      const share = this.#shareOf(account);
      if (share > this.share) account.background = true;
      else if (share < this.share / 2) account.background = false;
    }
    if (bodyBytes > this.largeAboveBytes) return 'background';
    if (account !== undefined && account.inFlight >= FOREGROUND_IN_FLIGHT) return 'background';
    return account?.background === true ? 'background' : 'foreground';
  }

  /** One of `sender`'s messages starts being opened. */
  begin(sender: string): void {
    this.#account(sender).inFlight++;
  }

  /** It is open (or failed): what it cost, in CPU milliseconds. */
  end(sender: string, costMs: number): void {
    const account = this.#account(sender);
    account.inFlight = Math.max(0, account.inFlight - 1);
    account.load += costMs;
  }

  /** It stopped the thread opening it: charged as twice the share, and sent to the background at once. */
  crashed(sender: string): void {
    const account = this.#account(sender);
    account.inFlight = Math.max(0, account.inFlight - 1);
    account.load = Math.max(account.load, 2 * this.share * ACCOUNT_SECONDS * 1000);
    account.background = true;
  }

  /** The share of one core `sender` has taken lately (0 when unknown); for logs and tests. */
  shareOf(sender: string): number {
    const account = this.#settled(sender);
    return account === undefined ? 0 : this.#shareOf(account);
  }

  /** The account, created empty for a sender not seen before. */
  #account(sender: string): Account {
    const account = this.#settled(sender);
    if (account !== undefined) return account;
    const created: Account = { load: 0, at: this.#clock(), background: false, inFlight: 0 };
    this.#accounts.set(sender, created);
    return created;
  }

  /** The account with its decay brought up to now. */
  #settled(sender: string): Account | undefined {
    const account = this.#accounts.get(sender);
    if (account === undefined) return undefined;
    const now = this.#clock();
    account.load *= Math.exp(-(now - account.at) / (ACCOUNT_SECONDS * 1000));
    account.at = now;
    return account;
  }

  #shareOf(account: Account): number {
    return account.load / (ACCOUNT_SECONDS * 1000);
  }
}
