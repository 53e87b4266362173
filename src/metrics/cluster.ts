/**
 * Metrics of a daemon with several worker processes (`milter.workers`): each worker keeps its own registry,
 * and only the primary process serves `/metrics`, with every worker's metrics summed (prom-client's cluster
 * aggregation over the cluster IPC channel). A scrape therefore sees one daemon, as with a single process.
 */
import { AggregatorRegistry, type PrometheusContentType, type Registry } from 'prom-client';

/** The primary's registry: collecting it asks every worker for its metrics and sums them. */
class ClusterRegistry extends AggregatorRegistry<PrometheusContentType> {
  override metrics(): Promise<string> {
    return this.clusterMetrics();
  }
}

/** The registry the primary serves: the workers' metrics, aggregated at each scrape. */
export function clusterRegistry(): Registry {
  return new ClusterRegistry();
}

/** In a worker: answer the primary's metric requests with `registry`. */
export function shareWithPrimary(registry: Registry): void {
  // Constructing an aggregator registry installs the worker's answering listener (once per process).
  new AggregatorRegistry<PrometheusContentType>();
  AggregatorRegistry.setRegistries([registry]);
}
