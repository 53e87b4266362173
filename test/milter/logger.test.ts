/** The library's logging seam: context fields, and debug lines that cost nothing when they are not written. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { debugEnabled, silentLogger, withContext, type LogFields, type MilterLogger } from '../../milter/src/index.ts';

interface Line {
  readonly level: string;
  readonly message: string;
  readonly fields: LogFields | undefined;
}

/** A logger that records every line; `debug` says whether it writes debug lines (undefined: it cannot say). */
function recorder(debug: boolean | undefined): MilterLogger & { lines: Line[]; setDebug(on: boolean): void } {
  const lines: Line[] = [];
  let on = debug;
  const keep = (level: string) => (message: string, fields?: LogFields) => {
    lines.push({ level, message, fields });
  };
  return {
    lines,
    setDebug: (next) => {
      on = next;
    },
    debug: keep('debug'),
    info: keep('info'),
    warn: keep('warn'),
    error: keep('error'),
    ...(on === undefined ? {} : { isDebugEnabled: () => on as boolean }),
  };
}

describe('withContext', () => {
  it('adds the context to every line, the line’s own fields winning', () => {
    const base = recorder(true);
    const log = withContext(withContext(base, { milter: 'm', conn: 7 }), { queueId: 'Q1' });
    log.info('one', { conn: 8, extra: true });
    log.warn('two');
    log.error('three', { queueId: 'Q2' });
    log.debug('four', { n: 1 });
    assert.deepEqual(base.lines, [
      { level: 'info', message: 'one', fields: { milter: 'm', conn: 8, queueId: 'Q1', extra: true } },
      { level: 'warn', message: 'two', fields: { milter: 'm', conn: 7, queueId: 'Q1' } },
      { level: 'error', message: 'three', fields: { milter: 'm', conn: 7, queueId: 'Q2' } },
      { level: 'debug', message: 'four', fields: { milter: 'm', conn: 7, queueId: 'Q1', n: 1 } },
    ]);
  });

  it('never passes on a debug line the logger does not write, and follows its level as it changes', () => {
    const base = recorder(false);
    const log = withContext(withContext(base, { conn: 1 }), { queueId: 'Q' });
    assert.equal(debugEnabled(log), false);
    log.debug('dropped', { n: 1 });
    assert.deepEqual(base.lines, []);
    base.setDebug(true);
    assert.equal(debugEnabled(log), true);
    log.debug('kept');
    assert.deepEqual(base.lines, [{ level: 'debug', message: 'kept', fields: { conn: 1, queueId: 'Q' } }]);
  });

  it('passes debug lines on to a logger that cannot say whether it writes them', () => {
    const base = recorder(undefined);
    assert.equal(debugEnabled(base), true);
    withContext(base, { conn: 2 }).debug('kept');
    assert.deepEqual(base.lines, [{ level: 'debug', message: 'kept', fields: { conn: 2 } }]);
  });

  it('the silent logger writes nothing, debug included', () => {
    assert.equal(debugEnabled(silentLogger), false);
    assert.equal(debugEnabled(withContext(silentLogger, { conn: 3 })), false);
  });
});
