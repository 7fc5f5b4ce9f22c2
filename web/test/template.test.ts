import { describe, expect, it } from "vitest";
import { bodyToScreen, moveSite, resizeSite, screenToBody, siteBox, type TemplateSite } from "../src/lib/template";

// imaging/animals.py places a site at col = cx + u·a·axis + sign·v·b·across; for a dorsal
// mouse with its head up, axis = +row and the image left is −v, so x = cx + v·B, y = cy + u·A.
const body = { cx: 200, cy: 250, A: 200, B: 80 };
const spine: TemplateSite = { name: "spine", site: "spine", shape: "rectangle", u: 0, v: 0, size_u: 1.1, size_v: 0.35 };
const hind: TemplateSite = { name: "left hindlimb", site: "left_hindlimb", shape: "circle", u: 0.6, v: -0.6, size_u: 0.35, size_v: 0.35 };

describe("body coordinates", () => {
  it("puts the head at the top, the tail at the bottom and −v on the image left", () => {
    expect(bodyToScreen(body, -1, 0)).toEqual({ x: 200, y: 50 });
    expect(bodyToScreen(body, 1, 0)).toEqual({ x: 200, y: 450 });
    expect(bodyToScreen(body, 0, -1)).toEqual({ x: 120, y: 250 });
    expect(screenToBody(body, 120, 50)).toEqual({ u: -1, v: -1 });
  });
  it("sizes a circle by size_v semi-minor axes and a rectangle by size_u × size_v", () => {
    const c = siteBox(body, hind);
    expect(c.x).toBeCloseTo(152, 10);
    expect(c.y).toBeCloseTo(370, 10);
    expect(c.r).toBeCloseTo(28, 10);
    const r = siteBox(body, spine);
    expect([r.x, r.y]).toEqual([200, 250]);
    expect(r.w).toBeCloseTo(28, 10);
    expect(r.h).toBeCloseTo(220, 10);
  });
  it("moves and resizes within the API's bounds", () => {
    expect(moveSite(body, hind, 240, 290)).toMatchObject({ u: 0.2, v: 0.5 });
    expect(moveSite(body, hind, 10000, -10000)).toMatchObject({ u: -2, v: 2 });
    expect(resizeSite(body, hind, 152 + 40, 370)).toMatchObject({ size_u: 0.5, size_v: 0.5 });
    expect(resizeSite(body, spine, 220, 350)).toMatchObject({ size_v: 0.5, size_u: 1 });
  });
});
