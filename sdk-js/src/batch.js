// batch.js: the `handle-batch` export of the WIT world `actor-batch`, made
// from the actor's `handle` (`actor(fn)`). `wactor build` adds it by itself
// when actor.toml says `batch = true` (it bundles a generated entry module
// that re-exports the actor's module and `handleBatch = batch(handle)`),
// so an actor's code does not change; docs/actors.md, "Batches".
//
// This is the only SDK module that imports `wactor:actor/batch`: a module
// of the world `actor` that imported it would not build, so index.js does
// not re-export it.

import { beginEvent } from 'wactor:actor/batch@0.2.0';

/**
 * The `handle-batch` export: runs `handle` on each WIT event in order,
 * calling `batch.begin-event(i)` before event i, so that the emits and
 * state writes that follow belong to that event alone, and returns one WIT
 * outcome per event. An async handler's Promise settles before the next
 * event begins (the batch then returns a Promise of the list). `handle`
 * never throws (`actor()` maps every exception onto an outcome).
 * @param {(witEvent: any) => any} handle the actor's `handle` export
 * @returns {(witEvents: any[]) => any[] | Promise<any[]>}
 */
export function batch(handle) {
  if (typeof handle !== 'function') throw new TypeError('batch(handle): handle must be the actor\'s handle export');
  return function handleBatch(witEvents) {
    const events = Array.from(witEvents);
    const outcomes = [];
    let index = 0;
    const run = () => {
      while (index < events.length) {
        beginEvent(index);
        const outcome = handle(events[index]);
        index += 1;
        if (outcome instanceof Promise) {
          return outcome.then((settled) => {
            outcomes.push(settled);
            return run();
          });
        }
        outcomes.push(outcome);
      }
      return outcomes;
    };
    return run();
  };
}
