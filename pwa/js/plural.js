// gettext's Plural-Forms expression (`n==1 ? 0 : 1`, Welsh's six forms), evaluated without eval:
// the strict CSP forbids eval and new Function, so the C-like expression is parsed here into
// closures once per language. Operators: ?: || && == != < > <= >= + - * / % ! and parentheses.

const TOKEN = /\s*(\d+|n|\|\||&&|==|!=|<=|>=|[-+*/%!<>?:()])/y;

function tokenize(text) {
  const tokens = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const start = TOKEN.lastIndex;
    const found = TOKEN.exec(text);
    if (!found) throw new SyntaxError(`Plural-Forms: cannot read "${text.slice(start)}"`);
    tokens.push(found[1]);
  }
  return tokens;
}

const BINARY = [
  ["||"], ["&&"], ["==", "!="], ["<", ">", "<=", ">="], ["+", "-"], ["*", "/", "%"],
];

const APPLY = {
  "||": (a, b) => (a || b ? 1 : 0),
  "&&": (a, b) => (a && b ? 1 : 0),
  "==": (a, b) => (a === b ? 1 : 0),
  "!=": (a, b) => (a !== b ? 1 : 0),
  "<": (a, b) => (a < b ? 1 : 0),
  ">": (a, b) => (a > b ? 1 : 0),
  "<=": (a, b) => (a <= b ? 1 : 0),
  ">=": (a, b) => (a >= b ? 1 : 0),
  "+": (a, b) => a + b,
  "-": (a, b) => a - b,
  "*": (a, b) => a * b,
  // C's integer division and remainder (n is a whole number).
  "/": (a, b) => Math.trunc(a / b),
  "%": (a, b) => a % b,
};

// A function n -> form index for a Plural-Forms `plural=` expression; throws on anything else.
export function compilePlural(text) {
  const tokens = tokenize(String(text));
  let at = 0;
  const peek = () => tokens[at];
  const take = (expected) => {
    const token = tokens[at];
    if (expected !== undefined && token !== expected) throw new SyntaxError(`Plural-Forms: expected "${expected}" in "${text}"`);
    at += 1;
    return token;
  };
  function ternary() {
    const test = binary(0);
    if (peek() !== "?") return test;
    take("?");
    const yes = ternary();
    take(":");
    const no = ternary();
    return (n) => (test(n) ? yes(n) : no(n));
  }
  function binary(level) {
    if (level === BINARY.length) return unary();
    let left = binary(level + 1);
    while (BINARY[level].includes(peek())) {
      const apply = APPLY[take()];
      const a = left;
      const b = binary(level + 1);
      left = (n) => apply(a(n), b(n));
    }
    return left;
  }
  function unary() {
    if (peek() === "!") {
      take();
      const inner = unary();
      return (n) => (inner(n) ? 0 : 1);
    }
    if (peek() === "-") {
      take();
      const inner = unary();
      return (n) => -inner(n);
    }
    return primary();
  }
  function primary() {
    const token = take();
    if (token === "n") return (n) => n;
    if (token === "(") {
      const inner = ternary();
      take(")");
      return inner;
    }
    if (token !== undefined && /^\d+$/.test(token)) {
      const value = Number(token);
      return () => value;
    }
    throw new SyntaxError(`Plural-Forms: unexpected "${token}" in "${text}"`);
  }
  const evaluate = ternary();
  if (at !== tokens.length) throw new SyntaxError(`Plural-Forms: unexpected "${tokens[at]}" in "${text}"`);
  return (n) => {
    const whole = Math.abs(Math.trunc(Number(n) || 0));
    const index = evaluate(whole);
    return typeof index === "boolean" ? Number(index) : index;
  };
}
