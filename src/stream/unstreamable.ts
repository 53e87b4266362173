/**
 * Raised by a streaming reader when the input takes a shape it does not handle. It is not a verdict: the caller
 * gives the same input to the buffered reader, which knows every shape and answers for it.
 */
export class Unstreamable extends Error {
  constructor(why: string) {
    super(`not streamable: ${why}`);
    this.name = 'Unstreamable';
  }
}
