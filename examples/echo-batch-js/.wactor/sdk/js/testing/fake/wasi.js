// fake/wasi.js: the subset of wasi:http@0.2.12, wasi:io@0.2.12 and
// wasi:clocks@0.2.12 that the SDK's HTTP client uses, for unit tests. A
// request is answered, when its response is first asked for, by the run's
// `http` script (testing/index.js); nothing touches the network. Every
// pollable is always ready, so the client never waits.
import { call, ComponentError } from './world.js';

const decoder = new TextDecoder();

export class Pollable {
  block() {}
  ready() {
    return true;
  }
}

/** @param {Pollable[]} list @returns {Uint32Array} */
export function poll(list) {
  return Uint32Array.from(list.map((_p, i) => i));
}

/** @returns {bigint} nanoseconds */
export function now() {
  return process.hrtime.bigint();
}

/** @returns {Pollable} */
export function subscribeInstant() {
  return new Pollable();
}

export function subscribeDuration() {
  return new Pollable();
}

export class Fields {
  constructor() {
    /** @type {Array<[string, Uint8Array]>} */
    this.list = [];
  }
  /** @param {Array<[string, Uint8Array]>} list */
  static fromList(list) {
    const fields = new Fields();
    for (const [name, value] of list) {
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new ComponentError({ tag: 'invalid-syntax' });
      fields.list.push([name, new Uint8Array(value)]);
    }
    return fields;
  }
  entries() {
    return this.list.map(([n, v]) => [n, v]);
  }
}

export class RequestOptions {
  setConnectTimeout() {}
  setFirstByteTimeout() {}
  setBetweenBytesTimeout() {}
}

class OutputStream {
  constructor(sink) {
    this.sink = sink;
  }
  checkWrite() {
    return 4096n;
  }
  write(bytes) {
    this.sink.push(new Uint8Array(bytes));
  }
  blockingWriteAndFlush(bytes) {
    this.write(bytes);
  }
  flush() {}
  subscribe() {
    return new Pollable();
  }
}

export class OutgoingBody {
  constructor() {
    /** @type {Uint8Array[]} */
    this.chunks = [];
    this.finished = false;
  }
  write() {
    return new OutputStream(this.chunks);
  }
  static finish(body) {
    body.finished = true;
  }
}

export class OutgoingRequest {
  /** @param {Fields} fields */
  constructor(fields) {
    this.fields = fields;
    this.method = { tag: 'get' };
    this.scheme = { tag: 'HTTPS' };
    this.authority = '';
    this.pathWithQuery = '/';
    this.outgoingBody = new OutgoingBody();
  }
  setMethod(method) {
    this.method = method;
  }
  setScheme(scheme) {
    this.scheme = scheme;
  }
  setAuthority(authority) {
    this.authority = authority;
  }
  setPathWithQuery(path) {
    this.pathWithQuery = path;
  }
  body() {
    return this.outgoingBody;
  }
}

class InputStream {
  constructor(bytes) {
    this.bytes = bytes;
  }
  read(len) {
    if (this.bytes.length === 0) throw new ComponentError({ tag: 'closed' });
    const n = Math.min(Number(len), this.bytes.length);
    const chunk = this.bytes.subarray(0, n);
    this.bytes = this.bytes.subarray(n);
    return chunk;
  }
  subscribe() {
    return new Pollable();
  }
}

export class IncomingBody {
  constructor(bytes) {
    this.bytes = bytes;
  }
  stream() {
    return new InputStream(this.bytes);
  }
  static finish() {
    return undefined;
  }
}

class IncomingResponse {
  constructor(status, fields, body) {
    this.statusCode = status;
    this.fields = fields;
    this.bodyBytes = body;
  }
  status() {
    return this.statusCode;
  }
  headers() {
    return this.fields;
  }
  consume() {
    return new IncomingBody(this.bodyBytes);
  }
}

/** Joins byte chunks. */
function concat(chunks) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

class FutureIncomingResponse {
  constructor(request) {
    this.request = request;
    this.taken = false;
  }
  subscribe() {
    return new Pollable();
  }
  get() {
    if (this.taken) return { tag: 'err', val: undefined };
    this.taken = true;
    const req = this.request;
    const headers = {};
    for (const [name, value] of req.fields.list) {
      const key = name.toLowerCase();
      const text = decoder.decode(value);
      headers[key] = key in headers ? `${headers[key]}, ${text}` : text;
    }
    const method = req.method.tag === 'other' ? req.method.val : req.method.tag.toUpperCase();
    const scheme = req.scheme.tag === 'other' ? req.scheme.val : req.scheme.tag.toLowerCase();
    const body = concat(req.outgoingBody.chunks);
    const answer = call().http({ method, url: `${scheme}://${req.authority}${req.pathWithQuery}`, headers, body });
    if (answer.errorCode !== undefined) return { tag: 'ok', val: { tag: 'err', val: answer.errorCode } };
    const fields = Fields.fromList(answer.headers);
    return { tag: 'ok', val: { tag: 'ok', val: new IncomingResponse(answer.status, fields, answer.body) } };
  }
}

/** wasi:http/outgoing-handler.handle */
export function handle(request) {
  return new FutureIncomingResponse(request);
}

/** The fake never fails a stream with an I/O error. */
export function httpErrorCode() {
  return undefined;
}
