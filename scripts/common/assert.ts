// Test assertions (deno std is not reachable here): thin wrappers over node:assert.
import assert from "node:assert/strict";

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.deepStrictEqual(actual, expected, msg);
}
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  assert.notDeepStrictEqual(actual, expected, msg);
}
export function assert_(cond: unknown, msg?: string): asserts cond {
  assert.ok(cond, msg);
}
export { assert_ as assert };
export function assertMatch(actual: string, re: RegExp, msg?: string): void {
  assert.match(actual, re, msg);
}
export function assertNotMatch(actual: string, re: RegExp, msg?: string): void {
  assert.doesNotMatch(actual, re, msg);
}
export function assertStringIncludes(actual: string, part: string, msg?: string): void {
  assert.ok(
    actual.includes(part),
    msg ?? `Expected ${JSON.stringify(actual)} to include ${JSON.stringify(part)}`,
  );
}
export async function assertRejects(fn: () => Promise<unknown>, re?: RegExp, msg?: string): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    if (re) assert.match(err instanceof Error ? err.message : String(err), re, msg);
    return err as Error;
  }
  throw new assert.AssertionError({ message: msg ?? "Expected the function to reject" });
}
export function assertThrows(fn: () => unknown, re?: RegExp, msg?: string): Error {
  try {
    fn();
  } catch (err) {
    if (re) assert.match(err instanceof Error ? err.message : String(err), re, msg);
    return err as Error;
  }
  throw new assert.AssertionError({ message: msg ?? "Expected the function to throw" });
}
