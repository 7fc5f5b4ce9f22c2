import { describe, expect, it } from "vitest";
import { checkScale, colourise, defaultScale, normalise, percentile, rampColour, ticks, valueAt } from "../src/lib/colour";

describe("normalise", () => {
  it("puts the geometric middle of a log scale at one half", () => {
    // log10(1e4) is halfway between log10(1e3) = 3 and log10(1e5) = 5
    expect(normalise({ kind: "log", min: 1e3, max: 1e5 }, 1e4)).toBeCloseTo(0.5, 12);
  });
  it("puts the arithmetic middle of a linear scale at one half", () => {
    expect(normalise({ kind: "linear", min: 10, max: 30 }, 20)).toBeCloseTo(0.5, 12);
  });
  it("is NaN below min (transparent), 1 at and above max, NaN for NaN", () => {
    const s = { kind: "log" as const, min: 1e3, max: 1e5 };
    expect(normalise(s, 999)).toBeNaN();
    expect(normalise(s, 0)).toBeNaN();
    expect(normalise(s, 1e5)).toBe(1);
    expect(normalise(s, 1e9)).toBe(1);
    expect(normalise(s, Number.NaN)).toBeNaN();
    expect(normalise(s, 1e3)).toBe(0);
  });
  it("is inverted by valueAt", () => {
    for (const s of [
      { kind: "log" as const, min: 2e4, max: 7e6 },
      { kind: "linear" as const, min: -5, max: 12 },
    ]) {
      for (const t of [0, 0.1, 0.37, 0.5, 0.99]) expect(normalise(s, valueAt(s, t))).toBeCloseTo(t, 10);
    }
  });
});

describe("checkScale", () => {
  it("refuses a log scale through zero and an empty range", () => {
    expect(() => checkScale({ kind: "log", min: 0, max: 10 })).toThrow(/min > 0/);
    expect(() => checkScale({ kind: "linear", min: 5, max: 5 })).toThrow(/greater/);
    expect(() => checkScale({ kind: "linear", min: Number.NaN, max: 5 })).toThrow(/numbers/);
  });
});

describe("percentile", () => {
  it("interpolates linearly like numpy.percentile", () => {
    // numpy.percentile([1, 2, 3, 4], 99.9) = 3.997; numpy.percentile([1, 2, 3, 4], 50) = 2.5
    expect(percentile([1, 2, 3, 4], 99.9)).toBeCloseTo(3.997, 12);
    expect(percentile([1, 2, 3, 4], 50)).toBeCloseTo(2.5, 12);
  });
});

describe("defaultScale", () => {
  it("spans 1/50 of the 99.9th percentile of positive pixels up to it (log), as the server's overlay", () => {
    const values = Array.from({ length: 1001 }, (_, i) => i); // 0 … 1000; positives 1 … 1000
    const s = defaultScale(values, "log");
    // numpy.percentile(range(1, 1001), 99.9) = 999.001
    expect(s.max).toBeCloseTo(999.001 * 1.0001, 6);
    expect(s.min).toBeCloseTo(999.001 / 50, 9);
  });
  it("spans the median to the maximum (linear)", () => {
    const s = defaultScale([0, 1, 2, 3, 100], "linear");
    expect(s.min).toBe(2);
    expect(s.max).toBe(100);
  });
});

describe("colourise", () => {
  it("leaves pixels below min transparent and paints max with the top colour", () => {
    const out = new Uint8ClampedArray(3 * 4);
    colourise([1, 1e5, 1e9], { kind: "log", min: 10, max: 1e5 }, out, 200);
    expect(out[3]).toBe(0);
    expect([...out.slice(4, 8)]).toEqual([...rampColour(1), 200]);
    expect([...out.slice(8, 12)]).toEqual([...rampColour(1), 200]);
  });
  it("paints min with the bottom colour", () => {
    const out = new Uint8ClampedArray(4);
    colourise([10], { kind: "log", min: 10, max: 1e5 }, out);
    expect([...out]).toEqual([...rampColour(0), 255]);
  });
});

describe("ticks", () => {
  it("labels each power of ten of a log scale", () => {
    expect(ticks({ kind: "log", min: 2e3, max: 5e6 })).toEqual([1e4, 1e5, 1e6]);
  });
  it("labels round steps of a linear scale", () => {
    expect(ticks({ kind: "linear", min: 0, max: 1000 })).toEqual([0, 200, 400, 600, 800, 1000]);
  });
});
