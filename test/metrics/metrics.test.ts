/** The Prometheus registry and its loopback endpoint, scraped over HTTP on 127.0.0.1 with an ephemeral port. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Slots } from '../../src/engine/slots.ts';
import { createMetrics, MetricsAddressError, parseLoopbackAddress, startMetricsServer, type MetricsServer } from '../../src/metrics/index.ts';

/** Bound on one HTTP exchange with the local endpoint. */
const HTTP_TIMEOUT_MS = 5000;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function fetchLocal(server: MetricsServer, path: string, method = 'GET'): Promise<Reply> {
  const [, host = '', port = ''] = /^\[?([^\]]*)\]?:(\d+)$/.exec(server.address) ?? [];
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(port), path, method, timeout: HTTP_TIMEOUT_MS }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${server.address} within ${HTTP_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The lines of the exposition that belong to muse-milter's own metrics. */
function museLines(body: string): string[] {
  return body.split('\n').filter((line) => /^(?:# (?:HELP|TYPE) )?muse_/.test(line));
}

describe('metrics endpoint', () => {
  it('serves every metric in the text format after events are recorded', async (t) => {
    const metrics = createMetrics();
    const server = await startMetricsServer(metrics.registry, '127.0.0.1:0');
    t.after(() => server.close());
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);

    metrics.messages.inc({ direction: 'outbound', action: 'encrypted' });
    metrics.messages.inc({ direction: 'outbound', action: 'encrypted' });
    metrics.messages.inc({ direction: 'inbound', action: 'decrypted' });
    metrics.dnsLookupSeconds.observe(0.003);
    metrics.dnsLookupSeconds.observe(0.2);
    metrics.dnsCacheRequests.inc({ result: 'hit' }, 3);
    metrics.dnsCacheRequests.inc({ result: 'miss' });
    metrics.cryptoSeconds.observe({ operation: 'encrypt' }, 0.002);
    metrics.messagesInFlight.inc(2);
    metrics.messagesInFlight.dec();
    metrics.milterConnections.set(4);
    metrics.configReloads.inc({ result: 'success' });
    metrics.watchDecryptions({ active: 2, queued: 5 });

    const reply = await fetchLocal(server, '/metrics');
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.deepEqual(museLines(reply.body), [
      '# HELP muse_messages_total Messages handled, by direction and action taken.',
      '# TYPE muse_messages_total counter',
      'muse_messages_total{direction="outbound",action="encrypted"} 2',
      'muse_messages_total{direction="inbound",action="decrypted"} 1',
      '# HELP muse_dns_lookup_seconds Duration of site-key DNS lookups, cache hits included.',
      '# TYPE muse_dns_lookup_seconds histogram',
      'muse_dns_lookup_seconds_bucket{le="0.001"} 0',
      'muse_dns_lookup_seconds_bucket{le="0.0025"} 0',
      'muse_dns_lookup_seconds_bucket{le="0.005"} 1',
      'muse_dns_lookup_seconds_bucket{le="0.01"} 1',
      'muse_dns_lookup_seconds_bucket{le="0.025"} 1',
      'muse_dns_lookup_seconds_bucket{le="0.05"} 1',
      'muse_dns_lookup_seconds_bucket{le="0.1"} 1',
      'muse_dns_lookup_seconds_bucket{le="0.25"} 2',
      'muse_dns_lookup_seconds_bucket{le="0.5"} 2',
      'muse_dns_lookup_seconds_bucket{le="1"} 2',
      'muse_dns_lookup_seconds_bucket{le="2.5"} 2',
      'muse_dns_lookup_seconds_bucket{le="5"} 2',
      'muse_dns_lookup_seconds_bucket{le="10"} 2',
      'muse_dns_lookup_seconds_bucket{le="+Inf"} 2',
      'muse_dns_lookup_seconds_sum 0.203',
      'muse_dns_lookup_seconds_count 2',
      '# HELP muse_dns_cache_requests_total DNS cache requests, by result.',
      '# TYPE muse_dns_cache_requests_total counter',
      'muse_dns_cache_requests_total{result="hit"} 3',
      'muse_dns_cache_requests_total{result="miss"} 1',
      '# HELP muse_crypto_seconds Duration of OpenPGP operations, by operation.',
      '# TYPE muse_crypto_seconds histogram',
      'muse_crypto_seconds_bucket{le="0.0005",operation="encrypt"} 0',
      'muse_crypto_seconds_bucket{le="0.001",operation="encrypt"} 0',
      'muse_crypto_seconds_bucket{le="0.0025",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="0.005",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="0.01",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="0.025",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="0.05",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="0.1",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="0.25",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="0.5",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="1",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="2.5",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="5",operation="encrypt"} 1',
      'muse_crypto_seconds_bucket{le="+Inf",operation="encrypt"} 1',
      'muse_crypto_seconds_sum{operation="encrypt"} 0.002',
      'muse_crypto_seconds_count{operation="encrypt"} 1',
      '# HELP muse_messages_in_flight Messages being processed now.',
      '# TYPE muse_messages_in_flight gauge',
      'muse_messages_in_flight 1',
      '# HELP muse_milter_connections Open milter connections from the MTA.',
      '# TYPE muse_milter_connections gauge',
      'muse_milter_connections 4',
      '# HELP muse_config_reloads_total Configuration reloads, by result.',
      '# TYPE muse_config_reloads_total counter',
      'muse_config_reloads_total{result="success"} 1',
      'muse_config_reloads_total{result="failure"} 0',
      '# HELP muse_decryptions_running Inbound decryptions running now (at most limits.maxConcurrentDecryptions per queue and lane).',
      '# TYPE muse_decryptions_running gauge',
      'muse_decryptions_running 2',
      '# HELP muse_decryptions_waiting Inbound decryptions waiting for a free slot.',
      '# TYPE muse_decryptions_waiting gauge',
      'muse_decryptions_waiting 5',
    ]);
    // prom-client's process metrics come along.
    assert.match(reply.body, /^process_cpu_user_seconds_total \d/m);
    assert.match(reply.body, /^nodejs_eventloop_lag_seconds \d/m);
  });

  it('starts the fixed-label series at zero, and can leave out the process metrics', async (t) => {
    const metrics = createMetrics({ processMetrics: false });
    const server = await startMetricsServer(metrics.registry, '127.0.0.1:0');
    t.after(() => server.close());
    const reply = await fetchLocal(server, '/metrics');
    assert.deepEqual(
      reply.body.split('\n').filter((line) => line !== '' && !line.startsWith('#')),
      [
        ...['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'].map(
          (le) => `muse_dns_lookup_seconds_bucket{le="${le}"} 0`,
        ),
        'muse_dns_lookup_seconds_sum 0',
        'muse_dns_lookup_seconds_count 0',
        'muse_dns_cache_requests_total{result="hit"} 0',
        'muse_dns_cache_requests_total{result="miss"} 0',
        'muse_messages_in_flight 0',
        'muse_milter_connections 0',
        'muse_config_reloads_total{result="success"} 0',
        'muse_config_reloads_total{result="failure"} 0',
        'muse_decryptions_running 0',
        'muse_decryptions_waiting 0',
      ],
    );
  });

  it('reads the decryption slots when scraped: running and waiting follow the queue', async (t) => {
    const metrics = createMetrics({ processMetrics: false });
    const server = await startMetricsServer(metrics.registry, '127.0.0.1:0');
    t.after(() => server.close());
    const slots = new Slots(1);
    metrics.watchDecryptions(slots);
    const gauges = async (): Promise<string[]> => museLines((await fetchLocal(server, '/metrics')).body).filter((line) => line.startsWith('muse_decryptions_'));
    let release = (): void => {};
    let started = (): void => {};
    const running = new Promise<void>((resolve) => (started = resolve));
    const first = slots.run(() => new Promise<void>((resolve) => { release = resolve; started(); }));
    const second = slots.run(async () => {});
    await running;
    assert.deepEqual(await gauges(), ['muse_decryptions_running 1', 'muse_decryptions_waiting 1']);
    release();
    await Promise.all([first, second]);
    assert.deepEqual(await gauges(), ['muse_decryptions_running 0', 'muse_decryptions_waiting 0']);
  });

  it('answers 404 for other paths, 405 for other methods, and HEAD without a body', async (t) => {
    const server = await startMetricsServer(createMetrics({ processMetrics: false }).registry, '127.0.0.1:0');
    t.after(() => server.close());
    const notFound = await fetchLocal(server, '/');
    assert.deepEqual([notFound.status, notFound.body], [404, 'Not Found\n']);
    assert.equal((await fetchLocal(server, '/metrics/extra')).status, 404);
    const wrongMethod = await fetchLocal(server, '/metrics', 'POST');
    assert.deepEqual([wrongMethod.status, wrongMethod.headers.allow, wrongMethod.body], [405, 'GET, HEAD', 'Method Not Allowed\n']);
    const head = await fetchLocal(server, '/metrics', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.ok(Number(head.headers['content-length']) > 0);
    assert.equal((await fetchLocal(server, '/metrics?name[]=x')).status, 200);
  });

  it('listens on IPv6 loopback', async (t) => {
    const server = await startMetricsServer(createMetrics({ processMetrics: false }).registry, '[::1]:0');
    t.after(() => server.close());
    assert.match(server.address, /^\[::1\]:\d+$/);
    assert.equal((await fetchLocal(server, '/metrics')).status, 200);
  });

  it('refuses to bind anywhere but loopback', async () => {
    const registry = createMetrics({ processMetrics: false }).registry;
    for (const address of ['0.0.0.0:0', '192.0.2.1:9464', '[::]:0']) {
      await assert.rejects(startMetricsServer(registry, address), {
        name: 'MetricsAddressError',
        code: 'METRICS_NOT_LOOPBACK',
        message: `must be a loopback address (127.0.0.0/8 or [::1]), because the metrics endpoint has no authentication; got "${address}"`,
      });
    }
  });
});

describe('parseLoopbackAddress', () => {
  for (const [text, host, port] of [
    ['127.0.0.1:9464', '127.0.0.1', 9464],
    ['127.1.2.3:0', '127.1.2.3', 0],
    ['[::1]:9464', '::1', 9464],
    ['[::ffff:127.0.0.1]:80', '::ffff:127.0.0.1', 80],
  ] as const) {
    it(`reads ${text}`, () => assert.deepEqual(parseLoopbackAddress(text), { host, port }));
  }

  for (const text of ['127.0.0.1', ':9464', 'localhost:9464', '::1:9464', '[127.0.0.1]:9464', '127.0.0.1:65536', '127.0.0.1:x', '[::1]']) {
    it(`refuses "${text}" as malformed`, () => {
      assert.throws(
        () => parseLoopbackAddress(text),
        (error: unknown) =>
          error instanceof MetricsAddressError &&
          error.code === 'METRICS_BAD_ADDRESS' &&
          error.message === `expected an address such as 127.0.0.1:9464 or [::1]:9464, got "${text}"`,
      );
    });
  }
});
