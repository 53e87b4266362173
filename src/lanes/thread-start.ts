/**
 * Starting a worker thread from a module next to the caller's, whether the code runs built (JavaScript) or from
 * its TypeScript source under tsx (the tests). On Node 20 a worker thread does not inherit tsx's loader, so from
 * source a two-line bootstrap registers it before importing the module (tsx is a development dependency).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** The module `name` (no extension) in the directory of `callerUrl`, with the caller's own extension. */
export function siblingModule(callerUrl: string, name: string): URL {
  return new URL(`./${name}${callerUrl.endsWith('.ts') ? '.ts' : '.js'}`, callerUrl);
}

/** Starts `module` as a worker thread. */
export function startWorker(module: URL, options: Omit<WorkerOptions, 'eval'>): Worker {
  if (!module.pathname.endsWith('.ts')) return new Worker(module, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(module.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
