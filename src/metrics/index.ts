/** Prometheus metrics of the daemon and their loopback HTTP endpoint. This file is the public API of `src/metrics/`. */
export { MetricsAddressError, parseLoopbackAddress, type LoopbackAddress, type MetricsAddressErrorCode } from './listen-address.ts';
export { clusterRegistry, shareWithPrimary } from './cluster.ts';
export { createMetrics, type MetricsOptions, type MuseMetrics } from './registry.ts';
export { startMetricsServer, type MetricsServer } from './server.ts';
