import { describe, expect, it } from "vitest";
import {
  type Geometry,
  area,
  contains,
  fitView,
  handle,
  imageToSensor,
  resize,
  rotateTowards,
  screenToSensor,
  sensorToImage,
  sensorToScreen,
  shapeFromDrag,
  translate,
  zoomAt,
} from "../src/lib/geometry";

describe("screen ↔ sensor", () => {
  it("fits a 2048² sensor into a 760 × 560 box, centred", () => {
    const v = fitView(2048, 2048, 760, 560);
    expect(v.scale).toBeCloseTo(560 / 2048, 12);
    expect(v.offsetX).toBeCloseTo(100, 12);
    expect(v.offsetY).toBeCloseTo(0, 12);
    // the sensor's far corner lands on the box's bottom edge, 100 px from the right
    expect(sensorToScreen(v, { row: 2048, col: 2048 })).toEqual({ x: 660, y: 560 });
  });
  it("round-trips points through any zoom and pan", () => {
    const v = { scale: 0.37, offsetX: -120.5, offsetY: 33 };
    const p = { row: 1234.5, col: 87.25 };
    const back = screenToSensor(v, sensorToScreen(v, p));
    expect(back.row).toBeCloseTo(p.row, 10);
    expect(back.col).toBeCloseTo(p.col, 10);
  });
  it("zooms about the pointer: the sensor point under it stays under it", () => {
    const v = fitView(2048, 2048, 760, 560);
    const at = { x: 300, y: 200 };
    const before = screenToSensor(v, at);
    const after = screenToSensor(zoomAt(v, 2.5, at), at);
    expect(after.row).toBeCloseTo(before.row, 9);
    expect(after.col).toBeCloseTo(before.col, 9);
  });
});

describe("image ↔ sensor (imaging/geometry.py: pixel i covers [i·b, (i+1)·b))", () => {
  it("puts binned pixel (0, 0) at sensor (b/2, b/2)", () => {
    expect(imageToSensor(8, { row: 0, col: 0 })).toEqual({ row: 4, col: 4 });
    expect(imageToSensor(4, { row: 10, col: 3 })).toEqual({ row: 42, col: 14 });
  });
  it("is inverted by sensorToImage (index = s / b − 0.5)", () => {
    expect(sensorToImage(8, { row: 4, col: 4 })).toEqual({ row: 0, col: 0 });
    expect(sensorToImage(8, { row: 0, col: 16 })).toEqual({ row: -0.5, col: 1.5 });
  });
});

describe("shapes", () => {
  const circle: Geometry = { type: "circle", center_row: 100, center_col: 200, radius: 10 };
  it("contains what lies within its boundary", () => {
    expect(contains(circle, { row: 100, col: 209.9 })).toBe(true);
    expect(contains(circle, { row: 108, col: 207 })).toBe(false); // 8² + 7² = 113 > 100
    const rect: Geometry = { type: "rectangle", center_row: 0, center_col: 0, width: 40, height: 4, angle_deg: 90 };
    // rotated by 90°: its long side now runs along rows
    expect(contains(rect, { row: 15, col: 0 })).toBe(true);
    expect(contains(rect, { row: 0, col: 15 })).toBe(false);
    const ell: Geometry = { type: "ellipse", center_row: 0, center_col: 0, semi_axis_col: 20, semi_axis_row: 5, angle_deg: 0 };
    expect(contains(ell, { row: 0, col: 19 })).toBe(true);
    expect(contains(ell, { row: 6, col: 0 })).toBe(false);
    const tri: Geometry = { type: "polygon", vertices: [[0, 0], [0, 10], [10, 0]] };
    expect(contains(tri, { row: 2, col: 2 })).toBe(true);
    expect(contains(tri, { row: 8, col: 8 })).toBe(false);
  });
  it("has the analytic area (π r², π a b, w h, shoelace)", () => {
    expect(area(circle)).toBeCloseTo(Math.PI * 100, 10);
    expect(area({ type: "ellipse", center_row: 0, center_col: 0, semi_axis_col: 3, semi_axis_row: 2 })).toBeCloseTo(6 * Math.PI, 10);
    expect(area({ type: "polygon", vertices: [[0, 0], [0, 10], [10, 0]] })).toBe(50);
  });
  it("moves every kind of shape by the same offset", () => {
    expect(translate(circle, 5, -3)).toEqual({ ...circle, center_row: 105, center_col: 197 });
    expect(translate({ type: "polygon", vertices: [[1, 2]] }, 1, 1)).toEqual({ type: "polygon", vertices: [[2, 3]] });
  });
  it("resizes a circle to the dragged radius and a rectangle symmetrically", () => {
    expect(resize(circle, { row: 100, col: 230 })).toMatchObject({ radius: 30 });
    const rect: Geometry = { type: "rectangle", center_row: 50, center_col: 50, width: 10, height: 10, angle_deg: 0 };
    expect(resize(rect, { row: 60, col: 70 })).toMatchObject({ width: 40, height: 20 });
    expect(handle({ ...rect, width: 40, height: 20 } as Geometry)).toEqual({ row: 60, col: 70 });
  });
  it("rotates towards the pointer (angle from +col towards +row, as imaging/geometry.py)", () => {
    const ell: Geometry = { type: "ellipse", center_row: 0, center_col: 0, semi_axis_col: 20, semi_axis_row: 5, angle_deg: 0 };
    expect(rotateTowards(ell, { row: 10, col: 10 })).toMatchObject({ angle_deg: 45 });
  });
  it("draws a rectangle between the two corners of a drag", () => {
    expect(shapeFromDrag("rectangle", { row: 10, col: 20 }, { row: 30, col: 60 })).toEqual({
      type: "rectangle",
      center_row: 20,
      center_col: 40,
      width: 40,
      height: 20,
      angle_deg: 0,
    });
  });
});
