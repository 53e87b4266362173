/**
 * CPU and memory of a process and its descendants (a milter's primary and its workers), read from /proc.
 * Resident memory is sampled every few milliseconds and summed over the tree; CPU time is the kernel's
 * utime + stime, so the figure is exact however busy the sampler is.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat times (USER_HZ; 100 on Linux). */
const CLOCK_TICKS = 100;
const PAGE_SIZE = 4096;

/** What a monitored stretch of time cost. */
export interface ResourceUsage {
  /** CPU time used during the stretch, in cores (1.0 = one core busy all the time). */
  readonly cpuCores: number;
  /** Largest summed resident memory seen, MiB. */
  readonly peakRssMiB: number;
  /** Summed resident memory when the stretch began, MiB. */
  readonly startRssMiB: number;
  /** Processes in the tree. */
  readonly processes: number;
}

function readStat(pid: number): { ppid: number; ticks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name is in parentheses and may hold spaces: fields are counted after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

function residentBytes(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]) * PAGE_SIZE;
  } catch {
    return 0;
  }
}

/** The process and all its descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === undefined) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const tree: number[] = [];
  const visit = (pid: number): void => {
    tree.push(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  visit(root);
  return tree;
}

/** Summed resident memory of a process tree now, MiB. */
export function treeRssMiB(root: number): number {
  return processTree(root).reduce((sum, pid) => sum + residentBytes(pid), 0) / 1048576;
}

/** Watches a process tree from `start()` until `stop()`. */
export class ProcessMonitor {
  private pids: number[] = [];
  private ticksAtStart = new Map<number, number>();
  private startedAt = 0;
  private peak = 0;
  private startRss = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly root: number,
    private readonly intervalMs = 10,
  ) {}

  start(): void {
    this.pids = processTree(this.root);
    this.ticksAtStart = new Map(this.pids.map((pid) => [pid, readStat(pid)?.ticks ?? 0]));
    this.startedAt = performance.now();
    this.startRss = this.sampleRss();
    this.peak = this.startRss;
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, this.sampleRss());
    }, this.intervalMs);
  }

  stop(): ResourceUsage {
    clearInterval(this.timer);
    this.peak = Math.max(this.peak, this.sampleRss());
    const seconds = (performance.now() - this.startedAt) / 1000;
    let ticks = 0;
    for (const pid of this.pids) ticks += (readStat(pid)?.ticks ?? 0) - (this.ticksAtStart.get(pid) ?? 0);
    return {
      cpuCores: Math.round((ticks / CLOCK_TICKS / seconds) * 100) / 100,
      peakRssMiB: Math.round(this.peak / 1048576),
      startRssMiB: Math.round(this.startRss / 1048576),
      processes: this.pids.length,
    };
  }

  private sampleRss(): number {
    return this.pids.reduce((sum, pid) => sum + residentBytes(pid), 0);
  }
}
