// config.js: the actor's configuration values, from the `[config]` table
// of its manifest (or `wactor invoke --config k=v`): the
// wactor:actor/config import. Values are strings; parse them yourself.

import { hostConfigGet, hostConfigGetAll } from './host.js';
import { MissingConfig } from './errors.js';

/**
 * One value, or undefined when the key is not configured.
 * @param {string} key
 * @returns {string | undefined}
 */
function get(key) {
  return hostConfigGet(key);
}

/**
 * One value, or `fallback` when the key is not configured.
 * @param {string} key
 * @param {string} fallback
 * @returns {string}
 */
function getOr(key, fallback) {
  return hostConfigGet(key) ?? fallback;
}

/**
 * One value that must be configured.
 * @param {string} key
 * @returns {string}
 * @throws {MissingConfig} "config KEY is not set" (outcome dead)
 */
function requireValue(key) {
  const value = hostConfigGet(key);
  if (value === undefined) throw new MissingConfig(key);
  return value;
}

/**
 * Every configured key and value.
 * @returns {Record<string, string>}
 */
function all() {
  return Object.fromEntries(hostConfigGetAll());
}

/** The actor's config values. */
export const config = Object.freeze({ get, getOr, require: requireValue, all });
