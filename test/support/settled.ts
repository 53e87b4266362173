/** Whether a promise has settled, without waiting for it: for tests of back-pressure and coalescing. */

/** Whether `promise` has settled once every pending callback (microtasks, then one turn of the event loop) has run. */
export async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}
