/**
 * ROI shapes and the coordinate systems of the image view.
 *
 * Three systems (as in imaging/geometry.py):
 * - **sensor** (row, col): un-binned camera pixels, origin at the sensor's corner. ROIs live
 *   here, so one ROI means the same tissue at any binning (Living Image does the same).
 * - **image** (row, col): indices of a binned array; pixel i covers sensor [i·b, (i+1)·b), so
 *   its centre is at sensor (i + 0.5)·b.
 * - **screen** (x, y): CSS pixels in the view; x grows with col, y with row.
 */

export interface Point {
  row: number;
  col: number;
}

export interface ScreenPoint {
  x: number;
  y: number;
}

export type Geometry =
  | { type: "circle"; center_row: number; center_col: number; radius: number }
  | {
      type: "ellipse";
      center_row: number;
      center_col: number;
      semi_axis_row: number;
      semi_axis_col: number;
      angle_deg?: number;
    }
  | {
      type: "rectangle";
      center_row: number;
      center_col: number;
      width: number;
      height: number;
      angle_deg?: number;
    }
  | { type: "polygon"; vertices: [number, number][] }
  | { type: "union"; parts: Geometry[] };

export type ShapeType = "circle" | "ellipse" | "rectangle" | "polygon";

/** Zoom and pan: screen = offset + scale · sensor (scale in CSS px per sensor pixel). */
export interface View {
  scale: number;
  offsetX: number;
  offsetY: number;
}

export function sensorToScreen(view: View, p: Point): ScreenPoint {
  return { x: view.offsetX + view.scale * p.col, y: view.offsetY + view.scale * p.row };
}

export function screenToSensor(view: View, s: ScreenPoint): Point {
  return { row: (s.y - view.offsetY) / view.scale, col: (s.x - view.offsetX) / view.scale };
}

/** Sensor coordinates of the centre of binned pixel (row, col). */
export function imageToSensor(binning: number, p: Point): Point {
  return { row: (p.row + 0.5) * binning, col: (p.col + 0.5) * binning };
}

/** The binned pixel index (fractional; floor it for the pixel) that holds a sensor point. */
export function sensorToImage(binning: number, p: Point): Point {
  return { row: p.row / binning - 0.5, col: p.col / binning - 0.5 };
}

/** The view that fits a sensor area (rows × cols) into a box, centred. */
export function fitView(sensorRows: number, sensorCols: number, width: number, height: number): View {
  const scale = Math.min(width / sensorCols, height / sensorRows);
  return {
    scale,
    offsetX: (width - scale * sensorCols) / 2,
    offsetY: (height - scale * sensorRows) / 2,
  };
}

/** Zoom by `factor` keeping the screen point `at` fixed (the point under the mouse wheel). */
export function zoomAt(view: View, factor: number, at: ScreenPoint): View {
  const scale = view.scale * factor;
  return {
    scale,
    offsetX: at.x - (at.x - view.offsetX) * factor,
    offsetY: at.y - (at.y - view.offsetY) * factor,
  };
}

export function pan(view: View, dx: number, dy: number): View {
  return { ...view, offsetX: view.offsetX + dx, offsetY: view.offsetY + dy };
}

/** Move a shape by (dRow, dCol) sensor pixels. */
export function translate(g: Geometry, dRow: number, dCol: number): Geometry {
  switch (g.type) {
    case "polygon":
      return { ...g, vertices: g.vertices.map(([r, c]) => [r + dRow, c + dCol] as [number, number]) };
    case "union":
      return { ...g, parts: g.parts.map((p) => translate(p, dRow, dCol)) };
    default:
      return { ...g, center_row: g.center_row + dRow, center_col: g.center_col + dCol };
  }
}

/** Centre of a shape (vertex mean for polygons), in sensor pixels. */
export function centre(g: Geometry): Point {
  switch (g.type) {
    case "polygon": {
      const n = g.vertices.length;
      return {
        row: g.vertices.reduce((s, v) => s + v[0], 0) / n,
        col: g.vertices.reduce((s, v) => s + v[1], 0) / n,
      };
    }
    case "union": {
      const cs = g.parts.map(centre);
      return {
        row: cs.reduce((s, c) => s + c.row, 0) / cs.length,
        col: cs.reduce((s, c) => s + c.col, 0) / cs.length,
      };
    }
    default:
      return { row: g.center_row, col: g.center_col };
  }
}

/** A shape's point in its own frame: (u along its first axis, v along its second), unrotated. */
function toLocal(p: Point, c: Point, angleDeg: number): { u: number; v: number } {
  const t = (angleDeg * Math.PI) / 180;
  const dx = p.col - c.col;
  const dy = p.row - c.row;
  return { u: dx * Math.cos(t) + dy * Math.sin(t), v: -dx * Math.sin(t) + dy * Math.cos(t) };
}

/** Is the sensor point inside the shape? (Same conventions as imaging/geometry.py.) */
export function contains(g: Geometry, p: Point): boolean {
  switch (g.type) {
    case "circle":
      return (p.row - g.center_row) ** 2 + (p.col - g.center_col) ** 2 <= g.radius ** 2;
    case "ellipse": {
      const { u, v } = toLocal(p, centre(g), g.angle_deg ?? 0);
      return (u / g.semi_axis_col) ** 2 + (v / g.semi_axis_row) ** 2 <= 1;
    }
    case "rectangle": {
      const { u, v } = toLocal(p, centre(g), g.angle_deg ?? 0);
      return Math.abs(u) <= g.width / 2 && Math.abs(v) <= g.height / 2;
    }
    case "polygon": {
      let inside = false;
      const vs = g.vertices;
      for (let i = 0, j = vs.length - 1; i < vs.length; j = i++) {
        const [ri, ci] = vs[i];
        const [rj, cj] = vs[j];
        if (ri > p.row !== rj > p.row && p.col < ((cj - ci) * (p.row - ri)) / (rj - ri) + ci) {
          inside = !inside;
        }
      }
      return inside;
    }
    case "union":
      return g.parts.some((part) => contains(part, p));
  }
}

/** Geometric area in sensor pixels² (π r², π a b, w h, the shoelace formula). */
export function area(g: Geometry): number {
  switch (g.type) {
    case "circle":
      return Math.PI * g.radius ** 2;
    case "ellipse":
      return Math.PI * g.semi_axis_row * g.semi_axis_col;
    case "rectangle":
      return g.width * g.height;
    case "polygon": {
      let s = 0;
      const vs = g.vertices;
      for (let i = 0; i < vs.length; i++) {
        const [r1, c1] = vs[i];
        const [r2, c2] = vs[(i + 1) % vs.length];
        s += c1 * r2 - c2 * r1;
      }
      return Math.abs(s) / 2;
    }
    case "union":
      return g.parts.reduce((s, p) => s + area(p), 0);
  }
}

/**
 * Resize a shape by dragging its handle to the sensor point `to`: a circle's radius becomes the
 * distance to `to`; an ellipse's or rectangle's half-extent along each of its own axes follows
 * the point (so the opposite side stays centred); a polygon moves vertex `vertex`.
 */
export function resize(g: Geometry, to: Point, vertex = 0): Geometry {
  const minSize = 1;
  switch (g.type) {
    case "circle":
      return { ...g, radius: Math.max(minSize, Math.hypot(to.row - g.center_row, to.col - g.center_col)) };
    case "ellipse": {
      const { u, v } = toLocal(to, centre(g), g.angle_deg ?? 0);
      return { ...g, semi_axis_col: Math.max(minSize, Math.abs(u)), semi_axis_row: Math.max(minSize, Math.abs(v)) };
    }
    case "rectangle": {
      const { u, v } = toLocal(to, centre(g), g.angle_deg ?? 0);
      return { ...g, width: Math.max(minSize, 2 * Math.abs(u)), height: Math.max(minSize, 2 * Math.abs(v)) };
    }
    case "polygon": {
      const vertices = g.vertices.map((v, i) => (i === vertex ? ([to.row, to.col] as [number, number]) : v));
      return { ...g, vertices };
    }
    case "union":
      return g;
  }
}

/** Rotate an ellipse or rectangle so its first axis points from its centre towards `to`. */
export function rotateTowards(g: Geometry, to: Point): Geometry {
  if (g.type !== "ellipse" && g.type !== "rectangle") return g;
  const angle = (Math.atan2(to.row - g.center_row, to.col - g.center_col) * 180) / Math.PI;
  return { ...g, angle_deg: Math.round(angle * 10) / 10 };
}

/** The resize handle of a shape (its first axis end; a circle's rightmost point), sensor px. */
export function handle(g: Geometry): Point {
  switch (g.type) {
    case "circle":
      return { row: g.center_row, col: g.center_col + g.radius };
    case "ellipse":
    case "rectangle": {
      const t = ((g.angle_deg ?? 0) * Math.PI) / 180;
      const a = g.type === "ellipse" ? g.semi_axis_col : g.width / 2;
      const b = g.type === "ellipse" ? g.semi_axis_row : g.height / 2;
      // the corner (a, b) in the shape's frame, rotated back
      return {
        row: g.center_row + a * Math.sin(t) + b * Math.cos(t),
        col: g.center_col + a * Math.cos(t) - b * Math.sin(t),
      };
    }
    case "polygon":
      return { row: g.vertices[0][0], col: g.vertices[0][1] };
    case "union":
      return centre(g);
  }
}

/** The handle that rotates an ellipse or rectangle: beyond its first axis end. */
export function rotationHandle(g: Geometry): Point | null {
  if (g.type !== "ellipse" && g.type !== "rectangle") return null;
  const t = ((g.angle_deg ?? 0) * Math.PI) / 180;
  const a = (g.type === "ellipse" ? g.semi_axis_col : g.width / 2) * 1.25;
  return { row: g.center_row + a * Math.sin(t), col: g.center_col + a * Math.cos(t) };
}

/** A new shape of `type` spanning the drag from `a` to `b` (sensor points). */
export function shapeFromDrag(type: ShapeType, a: Point, b: Point): Geometry {
  const cr = (a.row + b.row) / 2;
  const cc = (a.col + b.col) / 2;
  const h = Math.max(1, Math.abs(b.row - a.row));
  const w = Math.max(1, Math.abs(b.col - a.col));
  switch (type) {
    case "circle":
      return { type, center_row: a.row, center_col: a.col, radius: Math.max(1, Math.hypot(b.row - a.row, b.col - a.col)) };
    case "ellipse":
      return { type, center_row: cr, center_col: cc, semi_axis_row: h / 2, semi_axis_col: w / 2, angle_deg: 0 };
    case "rectangle":
      return { type, center_row: cr, center_col: cc, width: w, height: h, angle_deg: 0 };
    case "polygon":
      return {
        type,
        vertices: [
          [a.row, a.col],
          [a.row, b.col],
          [b.row, b.col],
          [b.row, a.col],
        ],
      };
  }
}

/** Round every coordinate to 0.1 sensor px (what is sent to the server). */
export function rounded(g: Geometry): Geometry {
  const r = (x: number) => Math.round(x * 10) / 10;
  switch (g.type) {
    case "polygon":
      return { ...g, vertices: g.vertices.map(([a, b]) => [r(a), r(b)] as [number, number]) };
    case "union":
      return { ...g, parts: g.parts.map(rounded) };
    default: {
      const out: Record<string, unknown> = { ...g };
      for (const [k, v] of Object.entries(out)) if (typeof v === "number") out[k] = r(v);
      return out as Geometry;
    }
  }
}

/** SVG path of a shape in sensor coordinates (x = col, y = row). */
export function svgPath(g: Geometry): string {
  switch (g.type) {
    case "circle":
      return ellipsePath(g.center_row, g.center_col, g.radius, g.radius, 0);
    case "ellipse":
      return ellipsePath(g.center_row, g.center_col, g.semi_axis_row, g.semi_axis_col, g.angle_deg ?? 0);
    case "rectangle": {
      const t = ((g.angle_deg ?? 0) * Math.PI) / 180;
      const c = Math.cos(t);
      const s = Math.sin(t);
      const pts = [
        [-0.5, -0.5],
        [0.5, -0.5],
        [0.5, 0.5],
        [-0.5, 0.5],
      ].map(([du, dv]) => {
        const x = du * g.width * c - dv * g.height * s;
        const y = du * g.width * s + dv * g.height * c;
        return `${g.center_col + x},${g.center_row + y}`;
      });
      return `M${pts.join("L")}Z`;
    }
    case "polygon":
      return `M${g.vertices.map(([r, c]) => `${c},${r}`).join("L")}Z`;
    case "union":
      return g.parts.map(svgPath).join("");
  }
}

function ellipsePath(cr: number, cc: number, ar: number, ac: number, angleDeg: number): string {
  const t = (angleDeg * Math.PI) / 180;
  const p = (sign: number) => ({
    x: cc + sign * ac * Math.cos(t),
    y: cr + sign * ac * Math.sin(t),
  });
  const a = p(1);
  const b = p(-1);
  return `M${a.x},${a.y}A${ac},${ar} ${angleDeg} 1 1 ${b.x},${b.y}A${ac},${ar} ${angleDeg} 1 1 ${a.x},${a.y}Z`;
}
