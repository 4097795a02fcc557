// fake/emit.js: wactor:actor/emit@0.2.0 for unit tests: queues records;
// an empty topic is refused as by the host, and `reject.emit` refuses all.
import { call, ComponentError } from './world.js';

/** @param {{ topic: string, key?: Uint8Array, payload?: Uint8Array, headers: Array<{ name: string, value?: Uint8Array }> }} record */
export function send(record) {
  const c = call();
  if (c.reject.emit !== undefined) throw new ComponentError(c.reject.emit);
  if (record.topic === '') throw new ComponentError('the topic is empty');
  c.emits.push(record);
}
