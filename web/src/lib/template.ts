/**
 * The study's ROI template in body coordinates (imaging.SiteTemplate): `u` along the body
 * (−1 head … +1 tail, in semi-major axes), `v` across it (− = image left in a dorsal view, in
 * semi-minor axes). A circle's radius is `size_v` semi-minor axes; a rectangle is `size_u`
 * semi-major axes long and `size_v` semi-minor axes wide.
 *
 * The editor draws a dorsal body outline with its head up: centre (cx, cy), semi-axes A
 * (along, vertical) and B (across, horizontal), so x = cx + v·B and y = cy + u·A.
 */

export interface TemplateSite {
  name: string;
  site: string;
  shape: "circle" | "rectangle";
  u: number;
  v: number;
  size_u: number;
  size_v: number;
}

export interface Body {
  cx: number;
  cy: number;
  A: number;
  B: number;
}

export function bodyToScreen(body: Body, u: number, v: number): { x: number; y: number } {
  return { x: body.cx + v * body.B, y: body.cy + u * body.A };
}

export function screenToBody(body: Body, x: number, y: number): { u: number; v: number } {
  return { u: (y - body.cy) / body.A, v: (x - body.cx) / body.B };
}

/** The site's outline on screen: a circle (r) or an axis-aligned rectangle (w × h). */
export function siteBox(body: Body, s: TemplateSite): { x: number; y: number; r?: number; w?: number; h?: number } {
  const c = bodyToScreen(body, s.u, s.v);
  if (s.shape === "circle") return { ...c, r: s.size_v * body.B };
  return { ...c, w: s.size_v * body.B, h: s.size_u * body.A };
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Move a site to a screen point (kept within the API's ±2 bounds). */
export function moveSite(body: Body, s: TemplateSite, x: number, y: number): TemplateSite {
  const { u, v } = screenToBody(body, x, y);
  return { ...s, u: r3(clamp(u, -2, 2)), v: r3(clamp(v, -2, 2)) };
}

/** Resize a site so its edge passes through the screen point (sizes within (0, 2]). */
export function resizeSite(body: Body, s: TemplateSite, x: number, y: number): TemplateSite {
  const c = bodyToScreen(body, s.u, s.v);
  if (s.shape === "circle") {
    const r = Math.hypot(x - c.x, y - c.y) / body.B;
    const size = r3(clamp(r, 0.02, 2));
    return { ...s, size_u: size, size_v: size };
  }
  return {
    ...s,
    size_v: r3(clamp((2 * Math.abs(x - c.x)) / body.B, 0.02, 2)),
    size_u: r3(clamp((2 * Math.abs(y - c.y)) / body.A, 0.02, 2)),
  };
}
