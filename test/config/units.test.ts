/** Durations, sizes and file modes as the configuration file writes them. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseFileMode, parseSize } from '../../src/config/index.ts';

describe('parseDuration', () => {
  const accepted: [unknown, number][] = [
    [0, 0],
    [1500, 1500],
    ['250ms', 250],
    ['30s', 30_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['30d', 2_592_000_000],
    [' 10 s ', 10_000],
  ];
  for (const [input, ms] of accepted) it(`reads ${JSON.stringify(input)} as ${ms} ms`, () => assert.equal(parseDuration(input), ms));

  for (const input of ['', '5', '5 minutes', '1w', '-1s', '1e3s', 'ms', '5S', 1.5, -1, Number.NaN, null, true, ['1s'], { s: 1 }]) {
    it(`refuses ${JSON.stringify(input)}`, () => assert.equal(parseDuration(input), undefined));
  }
});

describe('parseSize', () => {
  const accepted: [unknown, number][] = [
    [0, 0],
    [4096, 4096],
    ['512B', 512],
    ['64KiB', 65_536],
    ['50MiB', 52_428_800],
    ['1GiB', 1_073_741_824],
    ['1.5KiB', 1536],
    ['2KB', 2000],
    ['2kB', 2000],
    ['50 MB', 50_000_000],
    ['1GB', 1_000_000_000],
  ];
  for (const [input, bytes] of accepted) it(`reads ${JSON.stringify(input)} as ${bytes} bytes`, () => assert.equal(parseSize(input), bytes));

  for (const input of ['', '10', '10QB', '1kib', '1TiB', '-1KiB', 0.5, null, '64 KiB bytes']) {
    it(`refuses ${JSON.stringify(input)}`, () => assert.equal(parseSize(input), undefined));
  }
});

describe('parseFileMode', () => {
  for (const [input, mode] of [['0660', 0o660], ['660', 0o660], ['0600', 0o600], ['0777', 0o777]] as const) {
    it(`reads "${input}" as ${mode.toString(8)}`, () => assert.equal(parseFileMode(input), mode));
  }
  // 660 is what YAML 1.2 makes of an unquoted 0660: a decimal number, refused rather than misread.
  for (const input of [660, 0o660, '0668', '06600', 'rw-rw----', '']) {
    it(`refuses ${JSON.stringify(input)}`, () => assert.equal(parseFileMode(input), undefined));
  }
});
