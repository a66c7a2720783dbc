// Where a JSON text stops being valid. V8's JSON.parse errors sometimes carry no position (and quote
// the whole text), so when parsing fails this small scanner finds the offset and says what was expected.
export interface JsonSyntaxError {
  offset: number;
  message: string;
}

export function findJsonError(text: string): JsonSyntaxError | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) {
      i++;
    }
  };
  const show = (c: string | undefined) => (c === undefined ? "end of file" : JSON.stringify(c));
  class Stop extends Error {
    constructor(public at: number, msg: string) {
      super(msg);
    }
  }
  const fail = (msg: string): never => {
    throw new Stop(i, msg);
  };
  const str = () => {
    i++;
    while (i < text.length) {
      const c = text[i];
      if (c === '"') {
        i++;
        return;
      }
      if (c === "\\") {
        const n = text[i + 1];
        if (n === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail(`Invalid \\u escape in string`);
          i += 6;
        } else if (n !== undefined && '"\\/bfnrt'.includes(n)) i += 2;
        else fail(`Invalid escape "\\${n ?? ""}" in string`);
        continue;
      }
      if (c < " ") fail(`Unescaped control character in string (a raw newline or tab?)`);
      i++;
    }
    fail(`Unterminated string`);
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`Unexpected ${show(text[i])}: expected a property name in double quotes`);
        str();
        ws();
        if (text[i] !== ":") fail(`Unexpected ${show(text[i])}: expected ':' after the property name`);
        i++;
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return;
        }
        fail(`Unexpected ${show(text[i])}: expected ',' or '}'`);
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return;
        }
        fail(`Unexpected ${show(text[i])}: expected ',' or ']'`);
      }
    }
    if (c === '"') return str();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) fail(`Unexpected ${show(c)}: expected a value`);
    i += m![0].length;
  };
  try {
    value();
    ws();
    if (i < text.length) fail(`Unexpected ${show(text[i])} after the end of the JSON value`);
  } catch (e) {
    if (e instanceof Stop) return { offset: e.at, message: e.message };
    throw e;
  }
  return undefined;
}
