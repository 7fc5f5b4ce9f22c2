/**
 * Colour scales for luminescence: radiance [p/s/cm²/sr] → a colour, as Living Image draws it.
 *
 * A scale maps [min, max] linearly or logarithmically onto [0, 1]; values below min are
 * transparent (the photograph shows through), values above max take the top colour.
 */

export type ScaleKind = "log" | "linear";

export interface ColourScale {
  kind: ScaleKind;
  min: number;
  max: number;
}

/** Position in [0, 1] of `value` on the scale; NaN below `min` (drawn transparent). */
export function normalise(scale: ColourScale, value: number): number {
  const { kind, min, max } = scale;
  if (!Number.isFinite(value) || value < min) return Number.NaN;
  if (value >= max) return 1;
  if (kind === "log") {
    return (Math.log10(value) - Math.log10(min)) / (Math.log10(max) - Math.log10(min));
  }
  return (value - min) / (max - min);
}

/** The radiance at position `t` ∈ [0, 1] of the scale (the inverse of `normalise`). */
export function valueAt(scale: ColourScale, t: number): number {
  const { kind, min, max } = scale;
  if (kind === "log") return 10 ** (Math.log10(min) + t * (Math.log10(max) - Math.log10(min)));
  return min + t * (max - min);
}

/** A scale that can be drawn: finite, positive for log, max > min. Throws a readable error. */
export function checkScale(scale: ColourScale): ColourScale {
  const { kind, min, max } = scale;
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new Error("min and max must be numbers");
  if (kind === "log" && min <= 0) throw new Error("a log scale needs min > 0");
  if (!(max > min)) throw new Error("max must be greater than min");
  return scale;
}

/**
 * The default scale of an image, as the server's overlay draws it: log from 1/50 of the 99.9th
 * percentile of positive pixels to that percentile; linear from the median to the maximum.
 */
export function defaultScale(values: ArrayLike<number>, kind: ScaleKind): ColourScale {
  const finite: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v) && (kind === "linear" || v > 0)) finite.push(v);
  }
  if (finite.length === 0) return kind === "log" ? { kind, min: 1, max: 10 } : { kind, min: 0, max: 1 };
  finite.sort((a, b) => a - b);
  if (kind === "log") {
    const hi = percentile(finite, 99.9);
    return { kind, min: hi / 50, max: hi * 1.0001 };
  }
  const lo = percentile(finite, 50);
  const hi = finite[finite.length - 1];
  return { kind, min: lo, max: hi > lo ? hi : lo + 1e-12 };
}

/** Linear-interpolated percentile of sorted values (numpy's default method). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = ((n - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

// Living Image's default look is a rainbow from violet/blue through green and yellow to red;
// these anchors follow matplotlib's "jet"-like ramp, sampled to a 256-entry table.
const ANCHORS: [number, [number, number, number]][] = [
  [0.0, [48, 0, 140]],
  [0.2, [0, 60, 255]],
  [0.4, [0, 220, 200]],
  [0.6, [90, 240, 30]],
  [0.8, [255, 200, 0]],
  [1.0, [255, 20, 0]],
];

/** The colour [r, g, b] (0–255) at position t ∈ [0, 1]. */
export function rampColour(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t));
  for (let i = 1; i < ANCHORS.length; i++) {
    const [t1, c1] = ANCHORS[i];
    if (x <= t1) {
      const [t0, c0] = ANCHORS[i - 1];
      const f = (x - t0) / (t1 - t0);
      return [0, 1, 2].map((k) => Math.round(c0[k] + f * (c1[k] - c0[k]))) as [number, number, number];
    }
  }
  return ANCHORS[ANCHORS.length - 1][1];
}

const LUT: Uint8ClampedArray = (() => {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) lut.set(rampColour(i / 255), i * 3);
  return lut;
})();

/**
 * Paint radiance values (row-major, `rows × cols`) into RGBA pixels: transparent below min,
 * otherwise the scale's colour with the given opacity (0–255).
 */
export function colourise(
  values: ArrayLike<number>,
  scale: ColourScale,
  out: Uint8ClampedArray,
  alpha = 255,
): Uint8ClampedArray {
  for (let i = 0; i < values.length; i++) {
    const t = normalise(scale, values[i]);
    const o = i * 4;
    if (Number.isNaN(t)) {
      out[o + 3] = 0;
      continue;
    }
    const k = Math.round(t * 255) * 3;
    out[o] = LUT[k];
    out[o + 1] = LUT[k + 1];
    out[o + 2] = LUT[k + 2];
    out[o + 3] = alpha;
  }
  return out;
}

/** Tick values for a colour bar: powers of ten (log) or ~5 round steps (linear) within range. */
export function ticks(scale: ColourScale): number[] {
  const { kind, min, max } = scale;
  if (kind === "log") {
    const out: number[] = [];
    for (let e = Math.ceil(Math.log10(min)); e <= Math.floor(Math.log10(max)); e++) out.push(10 ** e);
    if (out.length >= 2) return out;
    return [min, max];
  }
  const raw = (max - min) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A radiance or flux for people: 3 significant digits in scientific notation (1.23e+06). */
export function formatSci(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (value === 0) return "0";
  return value.toExponential(2);
}
