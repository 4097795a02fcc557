// fake/batch.js: wactor:actor/batch@0.2.0 for unit tests. `beginEvent`
// records its index in `begun` (a test may clear it), so a test of the
// SDK's `batch()` can check which event each host call belonged to.

/** Indexes passed to beginEvent, in order. @type {number[]} */
export const begun = [];

/** @param {number} index */
export function beginEvent(index) {
  begun.push(index);
}
