// http.js: a small blocking HTTP client over wasi:http/outgoing-handler.
// Owns every use of wasi:http, wasi:io and wasi:clocks in the SDK (through
// wasi.js): building the request, writing its body, waiting for the
// response under one deadline and reading its body to the end.
//
// Why not fetch(): StarlingMonkey's fetch() aborts the whole component (an
// `unreachable` trap) when the host refuses a request with a body, e.g. a
// POST to a host not on the allow-list; this client turns every failure
// into an HttpError (outcome retry) instead.
//
// The host lets an actor reach only the hosts on its allow-list (the
// manifest's `allowed_hosts`). HTTP calls are not transactional: a retried
// event makes them again, so send an idempotency key.

import {
  Fields,
  IncomingBody,
  OutgoingBody,
  OutgoingRequest,
  RequestOptions,
  httpErrorCode,
  now,
  poll,
  subscribeInstant,
  wasiHttpHandle,
} from './wasi.js';
import { asBytes, decodeLossy, decodeStrict, utf8 } from './bytes.js';
import { HttpError } from './errors.js';
import { toWitHeaders } from './emit.js';

/** The timeout of a request that sets none, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;
const READ_CHUNK = 64n * 1024n;
const METHODS = new Set(['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch']);

/**
 * @typedef {object} RequestInit
 * @property {string} [method] default 'GET' (any case).
 * @property {string} url `http://` or `https://` URL; no credentials.
 * @property {Record<string, string | Uint8Array> | Array<[string, string | Uint8Array]>} [headers]
 * @property {string | Uint8Array | object} [body] a string (UTF-8), bytes,
 *   or any other value, sent as JSON with `content-type: application/json`
 *   unless a content-type is given.
 * @property {number} [timeoutMs] deadline of the whole exchange (connect,
 *   send, response, body), in milliseconds; default 10000.
 */

/** A response: any status, 4xx and 5xx included (they are for the actor to judge). */
export class Response {
  /**
   * @param {number} status
   * @param {Record<string, string>} headers lower-case names; repeated headers joined with ", "
   * @param {Uint8Array} body
   */
  constructor(status, headers, body) {
    /** @type {number} */
    this.status = status;
    /** @type {Record<string, string>} */
    this.headers = headers;
    /** @type {Uint8Array} */
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
      throw new HttpError('decode', err instanceof Error ? err.message : String(err));
    }
  }

  /**
   * The Retry-After header in milliseconds, when it is a whole number of
   * seconds (an HTTP date is not read).
   * @returns {number | undefined}
   */
  retryAfterMs() {
    const value = this.header('retry-after')?.trim();
    return value !== undefined && /^\d+$/.test(value) ? Number(value) * 1000 : undefined;
  }
}

/**
 * Splits a URL into scheme, authority and path-with-query, as the Rust
 * SDK does.
 * @param {string} url
 * @returns {{ scheme: { tag: 'HTTP' | 'HTTPS' }, authority: string, pathWithQuery: string }}
 * @throws {HttpError} kind 'invalid-url'
 */
export function parseUrl(url) {
  const invalid = (why) => new HttpError('invalid-url', `${url}: ${why}`);
  const at = url.indexOf('://');
  if (at < 0) throw invalid('no scheme (expected http:// or https://)');
  const schemeText = url.slice(0, at).toLowerCase();
  let scheme;
  if (schemeText === 'http') scheme = { tag: 'HTTP' };
  else if (schemeText === 'https') scheme = { tag: 'HTTPS' };
  else throw invalid('unsupported scheme (expected http or https)');
  const rest = url.slice(at + 3).split('#', 1)[0];
  let end = rest.search(/[/?]/);
  if (end < 0) end = rest.length;
  const authority = rest.slice(0, end);
  const path = rest.slice(end);
  if (authority === '') throw invalid('no host');
  if (authority.includes('@')) throw invalid('credentials in the URL are not supported');
  if (/[\s\x00-\x1f\x7f-\x9f]/.test(url)) throw invalid('contains whitespace');
  const pathWithQuery = path === '' ? '/' : path.startsWith('?') ? `/${path}` : path;
  return { scheme, authority, pathWithQuery };
}

/** Drops a resource now (children must go before their parent is finished). */
function drop(resource) {
  try {
    const dispose = Symbol.dispose && resource?.[Symbol.dispose];
    if (typeof dispose === 'function') dispose.call(resource);
  } catch {
    // already gone
  }
}

/** The error-code variant's case name, e.g. 'HTTP-request-denied'. */
function codeName(code) {
  return code && typeof code === 'object' && 'tag' in code ? String(code.tag) : String(code);
}

/** An HttpError for a wasi:http error-code. */
function fromCode(code) {
  const name = codeName(code);
  let detail = name;
  if (code && typeof code === 'object' && code.val !== undefined && typeof code.val !== 'object') detail += ` (${code.val})`;
  const lower = name.toLowerCase();
  if (lower === 'http-request-denied') return new HttpError('denied', detail);
  if (lower.endsWith('timeout')) return new HttpError('timeout', detail);
  return new HttpError('transport', detail);
}

/** An HttpError for a thrown wasi:io stream-error. */
function fromStream(err, what) {
  const payload = err && typeof err === 'object' && 'payload' in err ? err.payload : err;
  if (payload && payload.tag === 'closed') return new HttpError('transport', `stream closed while ${what}`);
  if (payload && payload.tag === 'last-operation-failed') {
    let code;
    try {
      code = httpErrorCode(payload.val);
    } catch {
      code = undefined;
    }
    if (code !== undefined) return fromCode(code);
    let text = 'I/O error';
    try {
      text = payload.val.toDebugString();
    } catch {
      // keep the generic text
    }
    return new HttpError('transport', `${what}: ${text}`);
  }
  return new HttpError('transport', `${what}: ${err instanceof Error ? err.message : String(err)}`);
}

/** One deadline for the whole exchange. */
class Timer {
  /** @param {number} timeoutMs */
  constructor(timeoutMs) {
    this.timeoutMs = timeoutMs;
    this.nanos = BigInt(Math.max(0, Math.ceil(timeoutMs))) * 1_000_000n;
    this.pollable = subscribeInstant(now() + this.nanos);
  }
  /** Waits until `ready` fires; throws a timeout HttpError when the deadline comes first. */
  wait(ready, what) {
    const fired = poll([ready, this.pollable]);
    if (!Array.from(fired).includes(0)) {
      throw new HttpError('timeout', `no progress ${what} within ${this.timeoutMs} ms`);
    }
  }
}

/**
 * Writes the request body in chunks the stream accepts, then finishes it.
 * @param {any} body OutgoingBody
 * @param {Uint8Array} bytes
 * @param {Timer} timer
 */
function writeBody(body, bytes, timer) {
  const stream = body.write();
  const ready = stream.subscribe();
  try {
    let rest = bytes;
    const what = 'writing the request body';
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
      while (Number(stream.checkWrite()) === 0) timer.wait(ready, 'flushing the request body');
    } catch (err) {
      throw err instanceof HttpError ? err : fromStream(err, 'flushing the request body');
    }
  } finally {
    drop(ready);
    drop(stream);
  }
  try {
    OutgoingBody.finish(body, undefined);
  } catch (err) {
    throw fromCode(err && typeof err === 'object' && 'payload' in err ? err.payload : err);
  }
}

/** Waits for the response head. */
function waitResponse(future, timer) {
  const ready = future.subscribe();
  try {
    for (;;) {
      const got = future.get();
      if (got === undefined) {
        timer.wait(ready, 'waiting for the response');
        continue;
      }
      if (got.tag !== 'ok') throw new HttpError('transport', 'response already taken');
      if (got.val.tag === 'ok') return got.val.val;
      throw fromCode(got.val.val);
    }
  } finally {
    drop(ready);
  }
}

/** Reads the whole response body. */
function readBody(response, timer) {
  const body = response.consume();
  const chunks = [];
  let size = 0;
  const stream = body.stream();
  const ready = stream.subscribe();
  try {
    for (;;) {
      let chunk;
      try {
        chunk = stream.read(READ_CHUNK);
      } catch (err) {
        const payload = err && typeof err === 'object' && 'payload' in err ? err.payload : err;
        if (payload && payload.tag === 'closed') break;
        throw fromStream(err, 'reading the response body');
      }
      if (chunk.length === 0) {
        timer.wait(ready, 'reading the response body');
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
    // trailers are not read
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/**
 * Sends a request and waits for the whole response (blocking: no await).
 * @param {RequestInit} init
 * @returns {Response} any status; decide on 4xx/5xx yourself
 * @throws {HttpError} when no response arrived: 'denied' (host not on the
 *   allow-list), 'timeout', 'transport', 'invalid-url', 'invalid-request'.
 *   Escaping the handler, it makes the call retry.
 */
function request(init) {
  const url = parseUrl(String(init.url));
  try {
    return send(init, url);
  } catch (err) {
    if (err instanceof HttpError && err.kind === 'denied' && err.host === undefined) {
      // The allow-list refused it: say which host:port and how to allow it.
      throw new HttpError('denied', err.detail, { host: hostPort(url) });
    }
    throw err;
  }
}

/**
 * The authority with the port the request connects to, as the host's
 * allow-list matches it: the URL's, else 443 for https and 80 for http.
 * @param {{ scheme: { tag: string }, authority: string }} url
 * @returns {string}
 */
export function hostPort(url) {
  const { authority } = url;
  const end = authority.lastIndexOf(']'); // an IPv6 literal: [::1]:8080
  if (authority.slice(end + 1).includes(':')) return authority;
  return `${authority}:${url.scheme.tag === 'HTTPS' ? 443 : 80}`;
}

/**
 * `request` once the URL is parsed.
 * @param {RequestInit} init
 * @param {ReturnType<typeof parseUrl>} url
 * @returns {Response}
 */
function send(init, url) {
  const method = String(init.method ?? 'GET');
  const timer = new Timer(init.timeoutMs ?? DEFAULT_TIMEOUT_MS);

  const headerList = toWitHeaders(init.headers).map(({ name, value }) => [name, value ?? new Uint8Array(0)]);
  const hasHeader = (name) => headerList.some(([n]) => n.toLowerCase() === name);
  let body = new Uint8Array(0);
  if (init.body !== undefined && init.body !== null) {
    const bytes = asBytes(init.body);
    if (bytes !== undefined) {
      body = bytes;
    } else {
      let text;
      try {
        text = JSON.stringify(init.body);
      } catch (err) {
        throw new HttpError('invalid-request', `body is not encodable as JSON: ${err instanceof Error ? err.message : err}`);
      }
      body = utf8(text ?? 'null');
      if (!hasHeader('content-type')) headerList.push(['content-type', utf8('application/json')]);
    }
  }
  if (body.length > 0 && !hasHeader('content-length')) {
    headerList.push(['content-length', utf8(String(body.length))]);
  }

  let fields;
  try {
    fields = Fields.fromList(headerList);
  } catch (err) {
    throw new HttpError('invalid-request', `invalid header: ${codeName(err?.payload ?? err)}`);
  }
  const req = new OutgoingRequest(fields);
  const lower = method.toLowerCase();
  const setOrThrow = (what, fn) => {
    try {
      fn();
    } catch {
      throw what === 'method'
        ? new HttpError('invalid-request', `method ${method} refused`)
        : new HttpError('invalid-url', `${init.url}: ${what} refused`);
    }
  };
  setOrThrow('method', () => req.setMethod(METHODS.has(lower) ? { tag: lower } : { tag: 'other', val: method }));
  setOrThrow('scheme', () => req.setScheme(url.scheme));
  setOrThrow('authority', () => req.setAuthority(url.authority));
  setOrThrow('path', () => req.setPathWithQuery(url.pathWithQuery));
  const outgoingBody = req.body();

  const options = new RequestOptions();
  // A host may not support some of these; the deadline holds regardless.
  for (const set of ['setConnectTimeout', 'setFirstByteTimeout', 'setBetweenBytesTimeout']) {
    try {
      options[set](timer.nanos);
    } catch {
      // unsupported
    }
  }

  let future;
  try {
    future = wasiHttpHandle(req, options);
  } catch (err) {
    throw fromCode(err && typeof err === 'object' && 'payload' in err ? err.payload : err);
  }

  // A failed body write is not an error by itself: a server may answer
  // without reading the whole body, and a refused request closes the body
  // stream; the response (or its error code) says more.
  try {
    writeBody(outgoingBody, body, timer);
  } catch {
    // see above
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

/** @param {string} method */
function withMethod(method) {
  /**
   * @param {string} url
   * @param {Omit<RequestInit, 'url' | 'method'>} [init]
   * @returns {Response}
   */
  return (url, init = {}) => request({ ...init, method, url });
}

/** A blocking HTTP client over wasi:http. */
export const http = Object.freeze({
  request,
  get: withMethod('GET'),
  post: withMethod('POST'),
  put: withMethod('PUT'),
  patch: withMethod('PATCH'),
  delete: withMethod('DELETE'),
});
