// Types of @wactor/sdk/testing (see testing/index.js).

export type HttpAnswer =
  | { status?: number; headers?: Record<string, string>; body?: string | Uint8Array | unknown }
  | { error: 'denied' | 'timeout' | 'refused' | string };

export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
  text: string;
  json: any;
}

export interface RecordedEmit {
  topic: string;
  key: string | undefined;
  keyBytes: Uint8Array | undefined;
  payload: Uint8Array | null;
  text: string | null;
  json: any;
  headers: Record<string, string | null>;
}

export interface RunOptions {
  config?: Record<string, string>;
  state?: Record<string, string | Uint8Array | unknown> | Map<string, string | Uint8Array>;
  http?: HttpAnswer | HttpAnswer[] | ((request: RecordedRequest) => HttpAnswer);
  reject?: { emit?: string; state?: string };
}

export interface RunResult {
  outcome: 'done' | 'retry' | 'dead';
  reason: string | undefined;
  delayMs: number | undefined;
  emits: RecordedEmit[];
  state: Record<string, string>;
  changes: Array<{ key: string; value: string | null }>;
  logs: Array<{ level: string; message: string }>;
  requests: RecordedRequest[];
  attemptedEmits: RecordedEmit[];
}

export function run(handle: (event: any) => any, event?: object, options?: RunOptions): Promise<RunResult>;
export function loadEvent(path: string | URL): object;
export function witEvent(event?: object): object;
