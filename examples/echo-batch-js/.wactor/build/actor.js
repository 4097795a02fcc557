// .wactor/sdk/js/src/bytes.js
var encoder = new TextEncoder();
var strictDecoder = new TextDecoder("utf-8", { fatal: true });
var lossyDecoder = new TextDecoder("utf-8");
function utf8(text) {
  return encoder.encode(text);
}
function decodeStrict(bytes) {
  return strictDecoder.decode(bytes);
}
function decodeLossy(bytes) {
  return lossyDecoder.decode(bytes);
}
function decodeOrUndefined(bytes) {
  if (bytes === void 0) return void 0;
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return void 0;
  }
}
function asBytes(value) {
  if (typeof value === "string") return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return void 0;
}
function toNumber(value) {
  if (value === void 0 || value === null) return void 0;
  return typeof value === "bigint" ? Number(value) : value;
}
function oneLine(text, max = 500) {
  let line = String(text).split(/\r?\n/, 1)[0];
  if (line.length > max) line = `${line.slice(0, max)}...`;
  return line;
}

// .wactor/sdk/js/src/outcome.js
var OUTCOME = /* @__PURE__ */ Symbol.for("wactor.outcome");
function brand(obj) {
  Object.defineProperty(obj, OUTCOME, { value: true });
  return Object.freeze(obj);
}
var DONE = brand({ type: "done" });
function done() {
  return DONE;
}
function retry(reason, options = {}) {
  const { delayMs } = options;
  if (delayMs !== void 0 && !(typeof delayMs === "number" && delayMs >= 0)) {
    throw new TypeError(`retry: delayMs must be a non-negative number of milliseconds, not ${String(delayMs)}`);
  }
  return brand({
    type: "retry",
    reason: String(reason),
    delayMs: delayMs === void 0 ? void 0 : Math.ceil(delayMs)
  });
}
function dead(reason) {
  return brand({ type: "dead", reason: String(reason) });
}
function isOutcome(value) {
  return typeof value === "object" && value !== null && value[OUTCOME] === true;
}
var U64_MAX = (1n << 64n) - 1n;
function toWit(outcome) {
  switch (outcome.type) {
    case "done":
      return { tag: "done" };
    case "retry": {
      let delayMs;
      if (outcome.delayMs !== void 0) {
        delayMs = Number.isFinite(outcome.delayMs) ? BigInt(outcome.delayMs) : U64_MAX;
        if (delayMs > U64_MAX) delayMs = U64_MAX;
      }
      return { tag: "retry", val: { reason: outcome.reason, delayMs } };
    }
    default:
      return { tag: "dead", val: outcome.reason };
  }
}

// .wactor/sdk/js/src/errors.js
var WactorError = class extends Error {
  /**
   * The outcome the call ends with when this error escapes the handler.
   * @returns {import('./outcome.js').Outcome}
   */
  get outcome() {
    return retry(this.message);
  }
};
var PayloadError = class extends WactorError {
  /**
   * @param {string} detail what is wrong, e.g. "missing field `booking_id`"
   * @param {{ kind?: 'json' | 'utf8' }} [options] 'json' (default) gives
   *   "malformed JSON payload: <detail>", 'utf8' "payload is not UTF-8: <detail>"
   */
  constructor(detail, options = {}) {
    const kind = options.kind ?? "json";
    super(kind === "utf8" ? `payload is not UTF-8: ${detail}` : `malformed JSON payload: ${detail}`);
    this.name = "PayloadError";
    this.kind = kind;
  }
  get outcome() {
    return dead(this.message);
  }
};
var MissingConfig = class extends WactorError {
  /** @param {string} key */
  constructor(key) {
    super(`config ${key} is not set`);
    this.name = "MissingConfig";
    this.key = key;
  }
  get outcome() {
    return dead(this.message);
  }
};
var EmitError = class extends WactorError {
  /** @param {'rejected' | 'encode'} kind @param {string} detail */
  constructor(kind, detail) {
    super(kind === "encode" ? `emit value is not encodable as JSON: ${detail}` : `emit rejected: ${detail}`);
    this.name = "EmitError";
    this.kind = kind;
  }
  get outcome() {
    return this.kind === "encode" ? dead(this.message) : retry(this.message);
  }
};
var StateError = class extends WactorError {
  /** @param {'rejected' | 'decode' | 'encode'} kind @param {string} key @param {string} detail */
  constructor(kind, key, detail) {
    super(
      kind === "rejected" ? `state write rejected: ${detail}` : `state ${key} does not ${kind === "decode" ? "decode" : "encode"}: ${detail}`
    );
    this.name = "StateError";
    this.kind = kind;
    this.key = key;
  }
  get outcome() {
    return this.kind === "encode" ? dead(this.message) : retry(this.message);
  }
};
function deniedReason(host) {
  return `HTTP request to ${host} denied: the host is not in the actor's allowed_hosts (actor.toml) or --allow-host (wactor invoke)`;
}
var HttpError = class extends WactorError {
  /**
   * @param {'invalid-url' | 'invalid-request' | 'denied' | 'timeout' | 'transport' | 'decode'} kind
   * @param {string} detail
   * @param {{ host?: string }} [options] host: the host:port a denied request was for
   */
  constructor(kind, detail, options = {}) {
    if (kind === "denied" && options.host !== void 0) {
      super(deniedReason(options.host));
      this.name = "HttpError";
      this.kind = kind;
      this.detail = detail;
      this.host = options.host;
      return;
    }
    const prefix = {
      "invalid-url": "invalid URL",
      "invalid-request": "invalid HTTP request",
      denied: "HTTP request denied by the host",
      timeout: "HTTP request timed out",
      transport: "HTTP request failed",
      decode: "HTTP response body is not JSON"
    }[kind] ?? "HTTP request failed";
    super(`${prefix}: ${detail}`);
    this.name = "HttpError";
    this.kind = kind;
    this.detail = detail;
    this.host = void 0;
  }
};

// .wactor/sdk/js/src/event.js
var EMPTY = new Uint8Array(0);
var Event = class _Event {
  /**
   * @param {object} fields
   * @param {string} fields.topic
   * @param {number} [fields.partition]
   * @param {number | bigint} [fields.offset]
   * @param {number | bigint} [fields.timestampMs]
   * @param {Uint8Array} [fields.key]
   * @param {Uint8Array} [fields.payload] undefined: a tombstone
   * @param {Header[]} [fields.headers]
   * @param {number} [fields.attempt]
   */
  constructor(fields) {
    this.topic = fields.topic;
    this.partition = fields.partition ?? 0;
    this.offset = toNumber(fields.offset) ?? 0;
    this.timestampMs = toNumber(fields.timestampMs);
    this.key = fields.key;
    this.payload = fields.payload;
    this.headers = fields.headers ?? [];
    this.attempt = fields.attempt ?? 1;
  }
  /**
   * Builds an Event from the WIT `event` record (as componentize-js passes
   * it to the `handle` export).
   * @param {any} wit
   * @returns {Event}
   */
  static fromWit(wit) {
    return new _Event({
      topic: wit.topic,
      partition: wit.partition,
      offset: wit.offset,
      timestampMs: wit.timestampMs,
      key: wit.key,
      payload: wit.payload,
      headers: (wit.headers ?? []).map((h) => ({ name: h.name, value: h.value })),
      attempt: wit.attempt
    });
  }
  /** Whether the value is null (a tombstone). @returns {boolean} */
  get isTombstone() {
    return this.payload === void 0;
  }
  /** The payload's bytes: empty for a tombstone. @returns {Uint8Array} */
  bytes() {
    return this.payload ?? EMPTY;
  }
  /**
   * The payload as UTF-8 text ("" for a tombstone).
   * @returns {string}
   * @throws {PayloadError} kind 'utf8' (outcome dead) when it is not UTF-8
   */
  text() {
    try {
      return decodeStrict(this.bytes());
    } catch (err) {
      throw new PayloadError(err instanceof Error ? err.message : String(err), { kind: "utf8" });
    }
  }
  /**
   * The payload parsed as JSON. A tombstone or an empty value is not JSON.
   * @returns {any}
   * @throws {PayloadError} "malformed JSON payload: ..." (outcome dead)
   */
  json() {
    let text;
    try {
      text = decodeStrict(this.bytes());
    } catch (err) {
      throw new PayloadError(`not UTF-8: ${err instanceof Error ? err.message : String(err)}`);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new PayloadError(err instanceof Error ? err.message : String(err));
    }
  }
  /** The key as UTF-8 text; undefined when there is no key or it is not UTF-8. @returns {string | undefined} */
  keyText() {
    return decodeOrUndefined(this.key);
  }
  /**
   * The value of the first header called `name` (case-sensitive, as Kafka
   * header names are); undefined when absent or null.
   * @param {string} name
   * @returns {Uint8Array | undefined}
   */
  header(name) {
    return this.headers.find((h) => h.name === name)?.value;
  }
  /** `header(name)` as UTF-8 text (undefined if absent, null or not UTF-8). @param {string} name @returns {string | undefined} */
  headerText(name) {
    return decodeOrUndefined(this.header(name));
  }
  /** Whether a header called `name` is present (also with a null value). @param {string} name @returns {boolean} */
  hasHeader(name) {
    return this.headers.some((h) => h.name === name);
  }
};

// .wactor/sdk/js/src/host.js
import { log } from "wactor:actor/logging@0.2.0";
import { send } from "wactor:actor/emit@0.2.0";
import {
  get,
  set,
  delete as delete2
} from "wactor:actor/state@0.2.0";
import { get as get2, getAll } from "wactor:actor/config@0.2.0";

// .wactor/sdk/js/src/log.js
function formatOne(arg) {
  try {
    if (typeof arg === "string") return arg;
    if (arg instanceof Error) return arg.stack ? `${arg.name}: ${arg.message}
${arg.stack}` : `${arg.name}: ${arg.message}`;
    if (typeof arg === "bigint") return arg.toString();
    if (typeof arg === "symbol") return arg.toString();
    if (arg === void 0 || typeof arg === "function") return String(arg);
    if (arg instanceof Uint8Array) return `Uint8Array(${arg.length})`;
    try {
      const json = JSON.stringify(arg, (_k, v) => typeof v === "bigint" ? v.toString() : v);
      if (json !== void 0) return json;
    } catch {
    }
    return String(arg);
  } catch {
    let type = "value";
    try {
      type = typeof arg;
    } catch {
    }
    return `[unprintable ${type}]`;
  }
}
function format(args) {
  return args.map(formatOne).join(" ");
}
function logger(level) {
  return (...args) => log(level, format(args));
}
var log2 = Object.freeze({
  trace: logger("trace"),
  debug: logger("debug"),
  info: logger("info"),
  warn: logger("warn"),
  error: logger("error")
});

// .wactor/sdk/js/src/pending.js
var g = globalThis;
var realSetTimeout = typeof g.setTimeout === "function" ? g.setTimeout.bind(g) : void 0;
var realClearTimeout = typeof g.clearTimeout === "function" ? g.clearTimeout.bind(g) : void 0;
var realSetInterval = typeof g.setInterval === "function" ? g.setInterval.bind(g) : void 0;
var realClearInterval = typeof g.clearInterval === "function" ? g.clearInterval.bind(g) : void 0;
var realFetch = typeof g.fetch === "function" ? g.fetch : void 0;
var due = /* @__PURE__ */ new Set();
var fetched = false;
var onTimerEnd;
function timerEnded() {
  const notify = onTimerEnd;
  if (notify !== void 0 && realSetTimeout) realSetTimeout(notify, 0);
}
if (realSetTimeout && realClearTimeout) {
  g.setTimeout = function setTimeout(callback, delay, ...args) {
    let id;
    const run = () => {
      due.delete(id);
      try {
        if (typeof callback === "function") callback(...args);
      } finally {
        timerEnded();
      }
    };
    id = realSetTimeout(run, delay);
    due.add(id);
    return id;
  };
  g.clearTimeout = function clearTimeout(id) {
    realClearTimeout(id);
    if (due.delete(id)) timerEnded();
  };
}
if (realSetInterval && realClearInterval) {
  g.setInterval = function setInterval(callback, delay, ...args) {
    const id = realSetInterval(callback, delay, ...args);
    due.add(id);
    return id;
  };
  g.clearInterval = function clearInterval(id) {
    realClearInterval(id);
    if (due.delete(id)) timerEnded();
  };
}
if (realFetch) {
  g.fetch = function fetch(...args) {
    fetched = true;
    return realFetch.apply(g, args);
  };
}
var NEVER_SETTLED = "the handler's Promise never settled: it was still pending with nothing left to wait for (no timer due, no fetch), so the call could never end";
function begin() {
  fetched = false;
}
function watch(giveUp) {
  if (!realSetTimeout) return () => {
  };
  let active = true;
  const check = () => {
    if (!active) return;
    if (fetched) {
      active = false;
      onTimerEnd = void 0;
      return;
    }
    if (due.size > 0) return;
    active = false;
    onTimerEnd = void 0;
    giveUp();
  };
  onTimerEnd = check;
  realSetTimeout(check, 0);
  return () => {
    active = false;
    if (onTimerEnd === check) onTimerEnd = void 0;
  };
}

// .wactor/sdk/js/src/actor.js
var UNREADABLE = "unhandled exception (its message could not be read)";
function attempt(fn, fallback) {
  try {
    return fn();
  } catch {
    return fallback;
  }
}
function readOutcome(value) {
  return attempt(() => {
    if (!isOutcome(value)) return void 0;
    const type = value.type;
    if (type === "done") return done();
    if (type === "dead") return dead(String(value.reason));
    if (type === "retry") {
      const delayMs = value.delayMs;
      return retry(String(value.reason), delayMs === void 0 ? {} : { delayMs });
    }
    return void 0;
  }, void 0);
}
function outcomeOfError(err) {
  const outcome = readOutcome(err);
  if (outcome !== void 0) return outcome;
  const isSdkError = attempt(() => err instanceof WactorError, false);
  if (isSdkError) {
    const own = readOutcome(attempt(() => err.outcome, void 0));
    if (own !== void 0) return own;
  }
  const isError = attempt(() => err instanceof Error, false);
  let name = attempt(() => typeof err, "exception");
  if (isError) name = attempt(() => String(err.name) || "Error", "Error");
  const message = attempt(() => {
    if (isError) return String(err.message);
    if (typeof err === "symbol") return err.toString();
    return String(err);
  }, void 0);
  try {
    log2.error(`unhandled exception in the handler: ${format([err])}`);
  } catch {
  }
  if (message === void 0) return retry(`unhandled ${oneLine(name, 100)} (its message could not be read)`);
  return attempt(() => retry(`unhandled ${oneLine(name, 100)}: ${oneLine(message)}`), retry(UNREADABLE));
}
function outcomeOfResult(value) {
  if (value === void 0) return done();
  const outcome = readOutcome(value);
  if (outcome !== void 0) return outcome;
  const shown = attempt(() => oneLine(format([value]), 100), `a ${attempt(() => typeof value, "value")}`);
  return outcomeOfError(new TypeError(`the handler returned ${shown}, not an outcome (done(), retry(...), dead(...))`));
}
function toWitTotal(compute) {
  try {
    return toWit(compute());
  } catch {
    return toWit(retry(UNREADABLE));
  }
}
function actor(handler) {
  if (typeof handler !== "function") throw new TypeError("actor(handler): handler must be a function");
  return function handle3(witEvent) {
    begin();
    let result;
    try {
      result = handler(Event.fromWit(witEvent));
    } catch (err) {
      return toWitTotal(() => outcomeOfError(err));
    }
    let thenable;
    try {
      thenable = result !== null && (typeof result === "object" || typeof result === "function") && typeof result.then === "function";
    } catch (err) {
      return toWitTotal(() => outcomeOfError(err));
    }
    if (!thenable) return toWitTotal(() => outcomeOfResult(result));
    return new Promise((resolve) => {
      let settled = false;
      const settle = (compute) => {
        if (settled) return;
        settled = true;
        stop();
        resolve(toWitTotal(compute));
      };
      const stop = watch(() => settle(() => retry(NEVER_SETTLED)));
      new Promise((adopt) => adopt(result)).then(
        (value) => settle(() => outcomeOfResult(value)),
        (err) => settle(() => outcomeOfError(err))
      );
    });
  };
}

// .wactor/sdk/js/src/emit.js
function headerBytes(value, name) {
  if (value === null || value === void 0) return void 0;
  const bytes = asBytes(value);
  if (bytes === void 0) throw new TypeError(`emit: header ${name} must be a string, a Uint8Array or null`);
  return bytes;
}
function toWitHeaders(headers) {
  if (headers === void 0 || headers === null) return [];
  const out = [];
  if (Array.isArray(headers)) {
    for (const h of headers) {
      const [name, value] = Array.isArray(h) ? h : [h.name, h.value];
      out.push({ name: String(name), value: headerBytes(value, name) });
    }
  } else {
    for (const [name, value] of Object.entries(headers)) {
      out.push({ name, value: headerBytes(value, name) });
    }
  }
  return out;
}
function payloadBytes(payload) {
  if (payload === null || payload === void 0) return void 0;
  const bytes = asBytes(payload);
  if (bytes !== void 0) return bytes;
  let text;
  try {
    text = JSON.stringify(payload);
  } catch (err) {
    throw new EmitError("encode", err instanceof Error ? err.message : String(err));
  }
  if (text === void 0) throw new EmitError("encode", `a ${typeof payload} has no JSON form`);
  return utf8(text);
}
function send2(record) {
  if (typeof record !== "object" || record === null) throw new TypeError("emit.send: expected a record object");
  if (typeof record.topic !== "string") throw new TypeError("emit.send: topic must be a string");
  if (!("payload" in record)) {
    throw new TypeError("emit.send: the record has no payload (use payload: null for a tombstone)");
  }
  let key;
  if (record.key !== void 0 && record.key !== null) {
    key = asBytes(record.key);
    if (key === void 0) throw new TypeError("emit.send: key must be a string or a Uint8Array");
  }
  const headers = toWitHeaders(record.headers);
  if (record.delayMs !== void 0) {
    headers.push({ name: "wactor-delay-ms", value: utf8(String(Math.max(0, Math.ceil(record.delayMs)))) });
  }
  if (record.deliverAtMs !== void 0) {
    headers.push({ name: "wactor-deliver-at", value: utf8(String(Math.trunc(record.deliverAtMs))) });
  }
  const witRecord = { topic: record.topic, key, payload: payloadBytes(record.payload), headers };
  try {
    send(witRecord);
  } catch (err) {
    throw new EmitError("rejected", hostReason(err));
  }
}
function sendJson(topic, value, options = {}) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new EmitError("encode", err instanceof Error ? err.message : String(err));
  }
  if (text === void 0) throw new EmitError("encode", `a ${typeof value} has no JSON form`);
  send2({ ...options, topic, payload: text });
}
function tombstone(topic, options = {}) {
  send2({ ...options, topic, payload: null });
}
function hostReason(err) {
  if (err && typeof err === "object" && "payload" in err && err.payload !== void 0) return String(err.payload);
  return err instanceof Error ? err.message : String(err);
}
var emit = Object.freeze({ send: send2, sendJson, tombstone });

// .wactor/sdk/js/src/state.js
function get3(key) {
  return get(key);
}
function has(key) {
  return get(key) !== void 0;
}
function getText(key) {
  const bytes = get(key);
  return bytes === void 0 ? void 0 : decodeLossy(bytes);
}
function getJson(key) {
  const bytes = get(key);
  if (bytes === void 0) return void 0;
  try {
    return JSON.parse(decodeStrict(bytes));
  } catch (err) {
    throw new StateError("decode", key, err instanceof Error ? err.message : String(err));
  }
}
function set2(key, value) {
  const bytes = asBytes(value);
  if (bytes === void 0) throw new TypeError(`state.set(${JSON.stringify(key)}): the value must be a string or a Uint8Array (use state.setJson for other values)`);
  try {
    set(key, bytes);
  } catch (err) {
    throw new StateError("rejected", key, hostReason(err));
  }
}
function setJson(key, value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new StateError("encode", key, err instanceof Error ? err.message : String(err));
  }
  if (text === void 0) throw new StateError("encode", key, `a ${typeof value} has no JSON form`);
  set2(key, utf8(text));
}
function del(key) {
  try {
    delete2(key);
  } catch (err) {
    throw new StateError("rejected", key, hostReason(err));
  }
}
var state = Object.freeze({ get: get3, has, getText, getJson, set: set2, setJson, delete: del });

// .wactor/sdk/js/src/config.js
function get4(key) {
  return get2(key);
}
function getOr(key, fallback) {
  return get2(key) ?? fallback;
}
function requireValue(key) {
  const value = get2(key);
  if (value === void 0) throw new MissingConfig(key);
  return value;
}
function all() {
  return Object.fromEntries(getAll());
}
var config = Object.freeze({ get: get4, getOr, require: requireValue, all });

// .wactor/sdk/js/src/wasi.js
import { handle } from "wasi:http/outgoing-handler@0.2.12";
import {
  Fields,
  OutgoingRequest,
  OutgoingBody,
  RequestOptions,
  IncomingBody,
  httpErrorCode
} from "wasi:http/types@0.2.12";
import { poll } from "wasi:io/poll@0.2.12";
import { now, subscribeInstant } from "wasi:clocks/monotonic-clock@0.2.12";

// .wactor/sdk/js/src/http.js
var DEFAULT_TIMEOUT_MS = 1e4;
var READ_CHUNK = 64n * 1024n;
var METHODS = /* @__PURE__ */ new Set(["get", "head", "post", "put", "delete", "connect", "options", "trace", "patch"]);
var Response = class {
  /**
   * @param {number} status
   * @param {Record<string, string>} headers lower-case names; repeated headers joined with ", "
   * @param {Uint8Array} body
   */
  constructor(status, headers, body) {
    this.status = status;
    this.headers = headers;
    this.body = body;
  }
  /** Whether the status is 2xx. @returns {boolean} */
  get ok() {
    return this.status >= 200 && this.status < 300;
  }
  /** A header's value (case-insensitive), or undefined. @param {string} name @returns {string | undefined} */
  header(name) {
    return this.headers[name.toLowerCase()];
  }
  /** The body as UTF-8 text (invalid bytes become U+FFFD). @returns {string} */
  text() {
    return decodeLossy(this.body);
  }
  /**
   * The body parsed as JSON.
   * @returns {any}
   * @throws {HttpError} kind 'decode' (outcome retry)
   */
  json() {
    try {
      return JSON.parse(decodeStrict(this.body));
    } catch (err) {
      throw new HttpError("decode", err instanceof Error ? err.message : String(err));
    }
  }
  /**
   * The Retry-After header in milliseconds, when it is a whole number of
   * seconds (an HTTP date is not read).
   * @returns {number | undefined}
   */
  retryAfterMs() {
    const value = this.header("retry-after")?.trim();
    return value !== void 0 && /^\d+$/.test(value) ? Number(value) * 1e3 : void 0;
  }
};
function parseUrl(url) {
  const invalid = (why) => new HttpError("invalid-url", `${url}: ${why}`);
  const at = url.indexOf("://");
  if (at < 0) throw invalid("no scheme (expected http:// or https://)");
  const schemeText = url.slice(0, at).toLowerCase();
  let scheme;
  if (schemeText === "http") scheme = { tag: "HTTP" };
  else if (schemeText === "https") scheme = { tag: "HTTPS" };
  else throw invalid("unsupported scheme (expected http or https)");
  const rest = url.slice(at + 3).split("#", 1)[0];
  let end = rest.search(/[/?]/);
  if (end < 0) end = rest.length;
  const authority = rest.slice(0, end);
  const path = rest.slice(end);
  if (authority === "") throw invalid("no host");
  if (authority.includes("@")) throw invalid("credentials in the URL are not supported");
  if (/[\s\x00-\x1f\x7f-\x9f]/.test(url)) throw invalid("contains whitespace");
  const pathWithQuery = path === "" ? "/" : path.startsWith("?") ? `/${path}` : path;
  return { scheme, authority, pathWithQuery };
}
function drop(resource) {
  try {
    const dispose = Symbol.dispose && resource?.[Symbol.dispose];
    if (typeof dispose === "function") dispose.call(resource);
  } catch {
  }
}
function codeName(code) {
  return code && typeof code === "object" && "tag" in code ? String(code.tag) : String(code);
}
function fromCode(code) {
  const name = codeName(code);
  let detail = name;
  if (code && typeof code === "object" && code.val !== void 0 && typeof code.val !== "object") detail += ` (${code.val})`;
  const lower = name.toLowerCase();
  if (lower === "http-request-denied") return new HttpError("denied", detail);
  if (lower.endsWith("timeout")) return new HttpError("timeout", detail);
  return new HttpError("transport", detail);
}
function fromStream(err, what) {
  const payload = err && typeof err === "object" && "payload" in err ? err.payload : err;
  if (payload && payload.tag === "closed") return new HttpError("transport", `stream closed while ${what}`);
  if (payload && payload.tag === "last-operation-failed") {
    let code;
    try {
      code = httpErrorCode(payload.val);
    } catch {
      code = void 0;
    }
    if (code !== void 0) return fromCode(code);
    let text = "I/O error";
    try {
      text = payload.val.toDebugString();
    } catch {
    }
    return new HttpError("transport", `${what}: ${text}`);
  }
  return new HttpError("transport", `${what}: ${err instanceof Error ? err.message : String(err)}`);
}
var Timer = class {
  /** @param {number} timeoutMs */
  constructor(timeoutMs) {
    this.timeoutMs = timeoutMs;
    this.nanos = BigInt(Math.max(0, Math.ceil(timeoutMs))) * 1000000n;
    this.pollable = subscribeInstant(now() + this.nanos);
  }
  /** Waits until `ready` fires; throws a timeout HttpError when the deadline comes first. */
  wait(ready, what) {
    const fired = poll([ready, this.pollable]);
    if (!Array.from(fired).includes(0)) {
      throw new HttpError("timeout", `no progress ${what} within ${this.timeoutMs} ms`);
    }
  }
};
function writeBody(body, bytes, timer) {
  const stream = body.write();
  const ready = stream.subscribe();
  try {
    let rest = bytes;
    const what = "writing the request body";
    while (rest.length > 0) {
      let permitted;
      try {
        permitted = Number(stream.checkWrite());
      } catch (err) {
        throw fromStream(err, what);
      }
      if (permitted === 0) {
        timer.wait(ready, what);
        continue;
      }
      const chunk = rest.subarray(0, Math.min(permitted, rest.length));
      try {
        stream.write(chunk);
      } catch (err) {
        throw fromStream(err, what);
      }
      rest = rest.subarray(chunk.length);
    }
    try {
      stream.flush();
      while (Number(stream.checkWrite()) === 0) timer.wait(ready, "flushing the request body");
    } catch (err) {
      throw err instanceof HttpError ? err : fromStream(err, "flushing the request body");
    }
  } finally {
    drop(ready);
    drop(stream);
  }
  try {
    OutgoingBody.finish(body, void 0);
  } catch (err) {
    throw fromCode(err && typeof err === "object" && "payload" in err ? err.payload : err);
  }
}
function waitResponse(future, timer) {
  const ready = future.subscribe();
  try {
    for (; ; ) {
      const got = future.get();
      if (got === void 0) {
        timer.wait(ready, "waiting for the response");
        continue;
      }
      if (got.tag !== "ok") throw new HttpError("transport", "response already taken");
      if (got.val.tag === "ok") return got.val.val;
      throw fromCode(got.val.val);
    }
  } finally {
    drop(ready);
  }
}
function readBody(response, timer) {
  const body = response.consume();
  const chunks = [];
  let size = 0;
  const stream = body.stream();
  const ready = stream.subscribe();
  try {
    for (; ; ) {
      let chunk;
      try {
        chunk = stream.read(READ_CHUNK);
      } catch (err) {
        const payload = err && typeof err === "object" && "payload" in err ? err.payload : err;
        if (payload && payload.tag === "closed") break;
        throw fromStream(err, "reading the response body");
      }
      if (chunk.length === 0) {
        timer.wait(ready, "reading the response body");
        continue;
      }
      chunks.push(chunk);
      size += chunk.length;
    }
  } finally {
    drop(ready);
    drop(stream);
  }
  try {
    drop(IncomingBody.finish(body));
  } catch {
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
function request(init) {
  const url = parseUrl(String(init.url));
  try {
    return send3(init, url);
  } catch (err) {
    if (err instanceof HttpError && err.kind === "denied" && err.host === void 0) {
      throw new HttpError("denied", err.detail, { host: hostPort(url) });
    }
    throw err;
  }
}
function hostPort(url) {
  const { authority } = url;
  const end = authority.lastIndexOf("]");
  if (authority.slice(end + 1).includes(":")) return authority;
  return `${authority}:${url.scheme.tag === "HTTPS" ? 443 : 80}`;
}
function send3(init, url) {
  const method = String(init.method ?? "GET");
  const timer = new Timer(init.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const headerList = toWitHeaders(init.headers).map(({ name, value }) => [name, value ?? new Uint8Array(0)]);
  const hasHeader = (name) => headerList.some(([n]) => n.toLowerCase() === name);
  let body = new Uint8Array(0);
  if (init.body !== void 0 && init.body !== null) {
    const bytes = asBytes(init.body);
    if (bytes !== void 0) {
      body = bytes;
    } else {
      let text;
      try {
        text = JSON.stringify(init.body);
      } catch (err) {
        throw new HttpError("invalid-request", `body is not encodable as JSON: ${err instanceof Error ? err.message : err}`);
      }
      body = utf8(text ?? "null");
      if (!hasHeader("content-type")) headerList.push(["content-type", utf8("application/json")]);
    }
  }
  if (body.length > 0 && !hasHeader("content-length")) {
    headerList.push(["content-length", utf8(String(body.length))]);
  }
  let fields;
  try {
    fields = Fields.fromList(headerList);
  } catch (err) {
    throw new HttpError("invalid-request", `invalid header: ${codeName(err?.payload ?? err)}`);
  }
  const req = new OutgoingRequest(fields);
  const lower = method.toLowerCase();
  const setOrThrow = (what, fn) => {
    try {
      fn();
    } catch {
      throw what === "method" ? new HttpError("invalid-request", `method ${method} refused`) : new HttpError("invalid-url", `${init.url}: ${what} refused`);
    }
  };
  setOrThrow("method", () => req.setMethod(METHODS.has(lower) ? { tag: lower } : { tag: "other", val: method }));
  setOrThrow("scheme", () => req.setScheme(url.scheme));
  setOrThrow("authority", () => req.setAuthority(url.authority));
  setOrThrow("path", () => req.setPathWithQuery(url.pathWithQuery));
  const outgoingBody = req.body();
  const options = new RequestOptions();
  for (const set3 of ["setConnectTimeout", "setFirstByteTimeout", "setBetweenBytesTimeout"]) {
    try {
      options[set3](timer.nanos);
    } catch {
    }
  }
  let future;
  try {
    future = handle(req, options);
  } catch (err) {
    throw fromCode(err && typeof err === "object" && "payload" in err ? err.payload : err);
  }
  try {
    writeBody(outgoingBody, body, timer);
  } catch {
  }
  const response = waitResponse(future, timer);
  try {
    const status = response.status();
    const headers = {};
    const fieldsIn = response.headers();
    for (const [name, value] of fieldsIn.entries()) {
      const key = name.toLowerCase();
      const text = decodeLossy(value);
      headers[key] = key in headers ? `${headers[key]}, ${text}` : text;
    }
    drop(fieldsIn);
    const bytes = readBody(response, timer);
    return new Response(status, headers, bytes);
  } finally {
    drop(response);
    drop(future);
    drop(timer.pollable);
  }
}
function withMethod(method) {
  return (url, init = {}) => request({ ...init, method, url });
}
var http = Object.freeze({
  request,
  get: withMethod("GET"),
  post: withMethod("POST"),
  put: withMethod("PUT"),
  patch: withMethod("PATCH"),
  delete: withMethod("DELETE")
});

// src/actor.js
var handle2 = actor((event) => {
  const topic = config.getOr("out_topic", `${event.topic}.echo`);
  emit.send({ topic, key: event.key, payload: event.payload, headers: event.headers });
  return done();
});

// .wactor/sdk/js/src/batch.js
import { beginEvent } from "wactor:actor/batch@0.2.0";
function batch(handle3) {
  if (typeof handle3 !== "function") throw new TypeError("batch(handle): handle must be the actor's handle export");
  return function handleBatch2(witEvents) {
    const events = Array.from(witEvents);
    const outcomes = [];
    let index = 0;
    const run = () => {
      while (index < events.length) {
        beginEvent(index);
        const outcome = handle3(events[index]);
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

// .wactor/build/batch-entry.js
var handleBatch = batch(handle2);
export {
  handle2 as handle,
  handleBatch
};
