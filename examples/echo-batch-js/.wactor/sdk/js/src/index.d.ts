// Types of @wactor/sdk (see README.md; the JSDoc in src/ has the details).

export type Outcome =
  | { readonly type: 'done' }
  | { readonly type: 'retry'; readonly reason: string; readonly delayMs: number | undefined }
  | { readonly type: 'dead'; readonly reason: string };

export function done(): Outcome;
export function retry(reason: string, options?: { delayMs?: number }): Outcome;
export function dead(reason: string): Outcome;
export function isOutcome(value: unknown): value is Outcome;
export function describe(outcome: Outcome): string;

export interface Header { name: string; value: Uint8Array | undefined }

export class Event {
  topic: string;
  partition: number;
  /** The WIT s64 as a number (exact below 2^53). */
  offset: number;
  timestampMs: number | undefined;
  key: Uint8Array | undefined;
  /** undefined: a tombstone (null value). */
  payload: Uint8Array | undefined;
  headers: Header[];
  attempt: number;
  readonly isTombstone: boolean;
  bytes(): Uint8Array;
  /** @throws PayloadError */
  text(): string;
  /** @throws PayloadError */
  json<T = any>(): T;
  keyText(): string | undefined;
  header(name: string): Uint8Array | undefined;
  headerText(name: string): string | undefined;
  hasHeader(name: string): boolean;
}

export type Handler = (event: Event) => Outcome | void | Promise<Outcome | void>;
export function actor(handler: Handler): (event: unknown) => unknown;

export class WactorError extends Error { readonly outcome: Outcome }
export class PayloadError extends WactorError {
  constructor(detail: string, options?: { kind?: 'json' | 'utf8' });
  kind: 'json' | 'utf8';
}
export class MissingConfig extends WactorError { constructor(key: string); key: string }
export class EmitError extends WactorError { constructor(kind: 'rejected' | 'encode', detail: string); kind: 'rejected' | 'encode' }
export class StateError extends WactorError {
  constructor(kind: 'rejected' | 'decode' | 'encode', key: string, detail: string);
  kind: 'rejected' | 'decode' | 'encode';
  key: string;
}
export type HttpErrorKind = 'invalid-url' | 'invalid-request' | 'denied' | 'timeout' | 'transport' | 'decode';
export class HttpError extends WactorError {
  constructor(kind: HttpErrorKind, detail: string, options?: { host?: string });
  kind: HttpErrorKind;
  detail: string;
  /** For a denied request made by http.request: the host:port the allow-list refused. */
  host: string | undefined;
}

export type HeaderValue = string | Uint8Array | null | undefined;
export type HeadersInit =
  | Record<string, HeaderValue>
  | Array<[string, HeaderValue]>
  | Array<{ name: string; value: HeaderValue }>;

export interface OutgoingRecord {
  topic: string;
  key?: string | Uint8Array;
  /** string (UTF-8), bytes, other values as JSON; null/undefined: a tombstone. */
  payload: unknown;
  headers?: HeadersInit;
  delayMs?: number;
  deliverAtMs?: number;
}

export const emit: {
  send(record: OutgoingRecord): void;
  sendJson(topic: string, value: unknown, options?: Omit<OutgoingRecord, 'topic' | 'payload'>): void;
  tombstone(topic: string, options?: Omit<OutgoingRecord, 'topic' | 'payload'>): void;
};

export const state: {
  get(key: string): Uint8Array | undefined;
  has(key: string): boolean;
  getText(key: string): string | undefined;
  getJson<T = any>(key: string): T | undefined;
  set(key: string, value: string | Uint8Array): void;
  setJson(key: string, value: unknown): void;
  delete(key: string): void;
};

export const config: {
  get(key: string): string | undefined;
  getOr(key: string, fallback: string): string;
  require(key: string): string;
  all(): Record<string, string>;
};

type LogFn = (...args: unknown[]) => void;
export const log: { trace: LogFn; debug: LogFn; info: LogFn; warn: LogFn; error: LogFn };

export interface RequestInit {
  method?: string;
  url: string;
  headers?: Record<string, string | Uint8Array> | Array<[string, string | Uint8Array]>;
  body?: string | Uint8Array | unknown;
  /** Milliseconds for the whole exchange; default 10000. */
  timeoutMs?: number;
}

export class Response {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
  readonly ok: boolean;
  header(name: string): string | undefined;
  text(): string;
  /** @throws HttpError kind 'decode' */
  json<T = any>(): T;
  retryAfterMs(): number | undefined;
}

export const DEFAULT_TIMEOUT_MS: number;

type MethodFn = (url: string, init?: Omit<RequestInit, 'url' | 'method'>) => Response;
export const http: {
  request(init: RequestInit): Response;
  get: MethodFn;
  post: MethodFn;
  put: MethodFn;
  patch: MethodFn;
  delete: MethodFn;
};
