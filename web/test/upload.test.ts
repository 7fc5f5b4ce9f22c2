import { describe, expect, it } from "vitest";
import { backoffMs, retryable } from "../src/lib/upload";

describe("upload retries", () => {
  it("retries network cuts and server errors, never a 4xx answer", () => {
    expect(retryable(0, null)).toBe(true);
    expect(retryable(503, null)).toBe(true);
    expect(retryable(409, "2")).toBe(true); // the same Idempotency-Key still running
    expect(retryable(409, null)).toBe(false);
    expect(retryable(422, null)).toBe(false);
    expect(retryable(401, null)).toBe(false);
  });
  it("backs off 1, 2, 4 … s up to 15 s", () => {
    expect([1, 2, 3, 4, 5, 6].map(backoffMs)).toEqual([1000, 2000, 4000, 8000, 15000, 15000]);
  });
});
