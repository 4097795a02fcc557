// fake/logging.js: wactor:actor/logging@0.2.0 for unit tests: records lines.
import { call } from './world.js';

/** @param {string} level @param {string} message */
export function log(level, message) {
  call().logs.push({ level, message });
}
