/** Settings written in an outdated form: they still load, read as documented, and each gets one exact notice. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configNotices, parseConfig } from '../../src/config/index.ts';

const file = (signCleartext: string): string => `site:\n  domain: example.org\npolicy:\n  default: dns\n  signCleartext: ${signCleartext}\n`;

describe('policy.signCleartext', () => {
  it('reads the old true as always, with a notice naming its place and the new values', () => {
    assert.equal(parseConfig(file('true'), 'muse.yaml').policy.signCleartext, 'always');
    assert.deepEqual(configNotices(file('true'), 'muse.yaml'), [
      'muse.yaml:5:18: policy.signCleartext: the boolean form is outdated; true is read as "always" (every clear-text ' +
        'message is signed, also to sites without a MUSE record). Write "always" to keep that, or "muse-sites" (the ' +
        'default: sign only for domains that publish a _muse record, and leave mail to every other site exactly as it arrived)',
    ]);
  });

  it('reads the old false as never, with a notice', () => {
    assert.equal(parseConfig(file('false'), 'muse.yaml').policy.signCleartext, 'never');
    assert.deepEqual(configNotices(file('false'), 'muse.yaml'), [
      'muse.yaml:5:18: policy.signCleartext: the boolean form is outdated; false is read as "never" (no clear-text message is signed). Write "never"',
    ]);
  });

  it('takes never, muse-sites and always as they are, without notices; muse-sites is the default', () => {
    for (const value of ['never', 'muse-sites', 'always'] as const) {
      assert.equal(parseConfig(file(value), 'muse.yaml').policy.signCleartext, value);
      assert.deepEqual(configNotices(file(value), 'muse.yaml'), []);
    }
    assert.equal(parseConfig('site:\n  domain: example.org\n', 'muse.yaml').policy.signCleartext, 'muse-sites');
  });

  it('refuses any other value', () => {
    assert.throws(() => parseConfig(file('sometimes'), 'muse.yaml'), { code: 'CONFIG_INVALID', problems: ['muse.yaml:5:18: policy.signCleartext: expected never, muse-sites or always'] });
  });
});
