// fake/config.js: wactor:actor/config@0.2.0 for unit tests: the run's config.
import { call } from './world.js';

/** @param {string} key @returns {string | undefined} */
export function get(key) {
  return call().config.get(key);
}

/** @returns {Array<[string, string]>} */
export function getAll() {
  return [...call().config.entries()];
}
