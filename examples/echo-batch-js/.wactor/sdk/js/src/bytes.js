// bytes.js: UTF-8 and byte helpers shared by the SDK modules (no host calls).

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true });
const lossyDecoder = new TextDecoder('utf-8');

/** UTF-8 bytes of a string. @param {string} text @returns {Uint8Array} */
export function utf8(text) {
  return encoder.encode(text);
}

/**
 * Decodes UTF-8, throwing a TypeError on invalid bytes.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function decodeStrict(bytes) {
  return strictDecoder.decode(bytes);
}

/**
 * Decodes UTF-8, replacing invalid bytes with U+FFFD.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function decodeLossy(bytes) {
  return lossyDecoder.decode(bytes);
}

/**
 * Decodes UTF-8, or undefined when the bytes are not valid UTF-8.
 * @param {Uint8Array | undefined} bytes
 * @returns {string | undefined}
 */
export function decodeOrUndefined(bytes) {
  if (bytes === undefined) return undefined;
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Bytes of a string (UTF-8), a Uint8Array (as is) or an ArrayBuffer /
 * other typed array (its bytes); undefined for anything else.
 * @param {unknown} value
 * @returns {Uint8Array | undefined}
 */
export function asBytes(value) {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  return undefined;
}

/**
 * A BigInt or number as a number (for s64 values such as offsets; exact
 * below 2^53).
 * @param {bigint | number | undefined} value
 * @returns {number | undefined}
 */
export function toNumber(value) {
  if (value === undefined || value === null) return undefined;
  return typeof value === 'bigint' ? Number(value) : value;
}

/**
 * The first line of a text, cut to `max` characters (for one-line reasons).
 * @param {string} text
 * @param {number} [max]
 * @returns {string}
 */
export function oneLine(text, max = 500) {
  let line = String(text).split(/\r?\n/, 1)[0];
  if (line.length > max) line = `${line.slice(0, max)}...`;
  return line;
}
