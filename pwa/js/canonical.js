// Canonical JSON and payload_hash, byte for byte the same as the server's
// json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).

// Python sorts keys by code point; JavaScript's default sort compares UTF-16 code
// units, which orders characters beyond U+FFFF before U+E000..U+FFFF. Compare code points.
export function compareCodePoints(a, b) {
  const left = Array.from(a, (c) => c.codePointAt(0));
  const right = Array.from(b, (c) => c.codePointAt(0));
  const shared = Math.min(left.length, right.length);
  for (let i = 0; i < shared; i += 1) {
    if (left[i] !== right[i]) return left[i] < right[i] ? -1 : 1;
  }
  return left.length - right.length;
}

// The server hashes the number it parsed: an integer prints as digits, a float as
// Python's repr (scientific below 1e-4, with a two-digit exponent).
export function canonicalNumber(value) {
  if (!Number.isFinite(value)) throw new TypeError("JSON has no NaN or Infinity");
  if (Number.isInteger(value)) return Object.is(value, -0) ? "0" : String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-4 && magnitude < 1e16) return String(value);
  const [mantissa, exponent] = value.toExponential().split("e");
  const power = Number(exponent);
  const digits = String(Math.abs(power)).padStart(2, "0");
  return `${mantissa}e${power < 0 ? "-" : "+"}${digits}`;
}

export function canonicalJson(value) {
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "number") return canonicalNumber(value);
  // JSON.stringify escapes a string exactly as Python does with ensure_ascii=False.
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).filter((key) => value[key] !== undefined).sort(compareCodePoints);
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(",")}}`;
  }
  throw new TypeError(`cannot send ${typeof value} as JSON`);
}

export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function payloadHash(data) {
  return `sha256:${await sha256Hex(new TextEncoder().encode(canonicalJson(data)))}`;
}
