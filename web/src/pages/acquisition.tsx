import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, all, allLinked, api, blobUrl, request } from "../lib/api";
import { type ColourScale, type ScaleKind, checkScale, colourise, formatSci, normalise, rampColour, ticks } from "../lib/colour";
import {
  type Geometry,
  type Point,
  type ShapeType,
  type View,
  centre,
  contains,
  fitView,
  handle,
  pan,
  resize,
  rotateTowards,
  rotationHandle,
  rounded,
  screenToSensor,
  sensorToScreen,
  shapeFromDrag,
  svgPath,
  translate,
  zoomAt,
} from "../lib/geometry";
import type { Acquisition, Animal, Measurement, Study } from "../types";
import { SITES, siteLabel } from "../types";
import { ErrorBox, Loading, useLoad } from "../ui";

/** The image of an acquisition as `GET …/{aid}/image` describes it (sensor geometry, ROIs). */
export interface ImageInfo {
  rows: number;
  cols: number;
  binning: number;
  units: string;
  sensor_rows: number;
  sensor_cols: number;
  photograph: { rows: number; cols: number; binning: number } | null;
  scale: { log: { min: number; max: number }; linear: { min: number; max: number } };
  rois: RoiInfo[];
}

export interface RoiInfo {
  roi_id: string;
  animal: string | null;
  site: string;
  label: string | null;
  source: string;
  geometry: Geometry | null;
}

// One colour scale shared by every image while "same scale" is on (Living Image's
// "apply to all"), kept for this tab only.
const SHARED_SCALE = "osteolux.sharedScale";

function sharedScale(): ColourScale | null {
  const s = sessionStorage.getItem(SHARED_SCALE);
  return s ? (JSON.parse(s) as ColourScale) : null;
}

export function AcquisitionPage({
  study,
  sessionId,
  acquisitionId,
  canWrite = true,
}: {
  study: Study;
  sessionId: string;
  acquisitionId: string;
  canWrite?: boolean;
}) {
  const base = `/studies/${study.id}/sessions/${sessionId}/acquisitions/${acquisitionId}`;
  const acq = useLoad(() => api<Acquisition>(base), [base]);
  const info = useLoad(async () => {
    try {
      return await api<ImageInfo>(`${base}/image`);
    } catch (e) {
      // an older server (404/405), or an acquisition imported from a table, without an image
      if (e instanceof ApiError && [404, 405, 422].includes(e.status)) return null;
      throw e;
    }
  }, [base]);
  const animals = useLoad(() => all<Animal>(`/studies/${study.id}/animals`), [study.id]);
  const [current, setCurrent] = useState<Acquisition>();
  useEffect(() => setCurrent(acq.data), [acq.data]);
  // after a field correction the ROIs are new versions of other animals: reload and redraw
  // (the editor is keyed by its ROI versions)
  function reloadAll() {
    acq.reload();
    info.reload();
  }
  const a = current;
  return (
    <div>
      <nav class="crumbs">
        <a href={`#/s/${study.id}/sessions`}>Imaging sessions</a> › {a ? `${a.click_number ?? a.id} (${a.view})` : "…"}
      </nav>
      <ErrorBox error={acq.error ?? info.error} />
      {acq.error || info.error ? null : !a || info.data === undefined ? (
        <Loading what="the acquisition" />
      ) : info.data === null ? (
        <OverlayFallback base={base} acquisition={a} />
      ) : (
        <Editor
          key={`${base}-${info.data.rois.map((r) => r.roi_id).join()}-${a.animals.map((x) => x.identifier).join()}`}
          base={base}
          acquisition={a}
          info={info.data}
          animals={animals.data ?? []}
          onChange={setCurrent}
          onFieldChanged={reloadAll}
          canWrite={canWrite}
        />
      )}
    </div>
  );
}

function OverlayFallback({ base, acquisition }: { base: string; acquisition: Acquisition }) {
  const img = useLoad(() => blobUrl(`${base}/overlay.png`), [base]);
  return (
    <div class="two">
      <div>
        {img.data ? (
          <img class="overlay" src={img.data} alt="luminescence overlay" />
        ) : img.error ? (
          <p class="muted">No image: these measurements were imported from a table.</p>
        ) : (
          <Loading what="the overlay" />
        )}
      </div>
      <MeasurementTable acquisition={acquisition} selected={null} onSelect={() => undefined} />
    </div>
  );
}

function position(a: Acquisition, identifier: string | null): number {
  const p = a.animals.find((x) => x.identifier === identifier)?.position;
  return p ?? 999;
}

function siteOrder(site: string): number {
  const i = (SITES as readonly string[]).indexOf(site);
  return i < 0 ? 99 : i;
}

function MeasurementTable({
  acquisition,
  selected,
  onSelect,
}: {
  acquisition: Acquisition;
  selected: string | null;
  onSelect: (roiId: string) => void;
}) {
  return (
    <table class="list compact" data-testid="measurements">
      <thead>
        <tr>
          <th>Mouse</th>
          <th>Site</th>
          <th title="Total flux [p/s]: the sum of radiance × pixel area × 4π… as Living Image reports it">Total flux [p/s]</th>
          <th title="Mean radiance in the ROI [p/s/cm²/sr]">Mean radiance</th>
          <th>Flags</th>
        </tr>
      </thead>
      <tbody>
        {acquisition.measurements
          .filter((m) => m.site !== "background")
          .sort((a, b) => position(acquisition, a.animal) - position(acquisition, b.animal) || siteOrder(a.site) - siteOrder(b.site))
          .map((m) => (
            <tr
              key={m.roi_id}
              class={m.roi_id === selected ? "selected" : ""}
              onClick={() => onSelect(m.roi_id)}
              data-roi={m.roi_id}
            >
              <td>{m.animal ?? "—"}</td>
              <td>{m.label ?? siteLabel(m.site)}</td>
              <td class="num">{formatSci(m.total_flux_ps)}</td>
              <td class="num">{formatSci(m.radiance_mean)}</td>
              <td>{m.flags.join(", ")}</td>
            </tr>
          ))}
      </tbody>
    </table>
  );
}

type Drag =
  | { kind: "pan"; x: number; y: number }
  | { kind: "move"; roiId: string; from: Point; start: Geometry }
  | { kind: "resize"; roiId: string; vertex: number }
  | { kind: "rotate"; roiId: string }
  | { kind: "draw"; type: ShapeType; from: Point };

interface Shape {
  roiId: string;
  animal: string | null;
  site: string;
  label: string | null;
  geometry: Geometry;
}

const W = 760;
const H = 560;

function Editor({
  base,
  acquisition,
  info,
  animals,
  onChange,
  onFieldChanged,
  canWrite,
}: {
  base: string;
  acquisition: Acquisition;
  info: ImageInfo;
  animals: Animal[];
  onChange: (a: Acquisition) => void;
  onFieldChanged: () => void;
  canWrite: boolean;
}) {
  const [kind, setKind] = useState<ScaleKind>(sharedScale()?.kind ?? "log");
  const [scale, setScale] = useState<ColourScale>(() => sharedScale() ?? { kind: "log", ...info.scale.log });
  const [locked, setLocked] = useState(!!sharedScale());
  const [view, setView] = useState<View>(() => fitView(info.sensor_rows, info.sensor_cols, W, H));
  const [shapes, setShapes] = useState<Shape[]>(() =>
    info.rois
      .filter((r) => r.geometry && r.site !== "background")
      .map((r) => ({ roiId: r.roi_id, animal: r.animal, site: r.site, label: r.label, geometry: r.geometry! })),
  );
  const [selected, setSelected] = useState<string | null>(null);
  const [tool, setTool] = useState<"select" | ShapeType>("select");
  const [newSite, setNewSite] = useState("custom");
  const [newAnimal, setNewAnimal] = useState<string>(acquisition.animals[0]?.identifier ?? "");
  const [reason, setReason] = useState("adjusted in the workspace");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [lastMs, setLastMs] = useState<number | null>(null);
  const [measured, setMeasured] = useState(0); // counts server measurements shown
  // the mice left to right as the user is correcting them (saved with PUT …/field)
  const fieldNow = acquisition.animals.map((a) => a.identifier);
  const [order, setOrder] = useState<string[]>(fieldNow);
  useEffect(() => setOrder(fieldNow), [fieldNow.join()]);
  const [tagDrag, setTagDrag] = useState<{ animal: string; x: number; y: number } | null>(null);
  const [, setDrag] = useState<Drag | null>(null); // re-renders while dragging
  const [draft, setDraft] = useState<Geometry | null>(null);
  const [polygon, setPolygon] = useState<Point[]>([]);
  const svgRef = useRef<SVGSVGElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const photo = useLoad(() => (info.photograph ? blobUrl(`${base}/image/photograph.png`) : Promise.resolve(null)), [base]);
  const radiance = useLoad(async () => {
    const r = await request(`${base}/image/radiance`);
    return new Float32Array(await r.arrayBuffer());
  }, [base]);

  // the luminescence layer, recoloured whenever the scale changes (no server round trip)
  useEffect(() => {
    const c = canvasRef.current;
    if (!c || !radiance.data) return;
    try {
      checkScale(scale);
    } catch {
      return;
    }
    const ctx = c.getContext("2d")!;
    const img = ctx.createImageData(info.cols, info.rows);
    colourise(radiance.data, scale, img.data, 200);
    ctx.putImageData(img, 0, 0);
  }, [radiance.data, scale]);

  useEffect(() => {
    if (locked) sessionStorage.setItem(SHARED_SCALE, JSON.stringify(scale));
  }, [locked, scale]);

  const byRoi = useMemo(() => new Map(acquisition.measurements.map((m) => [m.roi_id, m])), [acquisition]);
  const sel = shapes.find((s) => s.roiId === selected) ?? null;

  function point(e: PointerEvent | MouseEvent | WheelEvent): Point {
    const r = svgRef.current!.getBoundingClientRect();
    return screenToSensor(view, { x: e.clientX - r.left, y: e.clientY - r.top });
  }

  function setGeometry(roiId: string, g: Geometry) {
    setShapes((all) => all.map((s) => (s.roiId === roiId ? { ...s, geometry: g } : s)));
  }

  async function commit(roiId: string, g: Geometry) {
    const t0 = performance.now();
    setBusy(true);
    setError(undefined);
    const before = new Set(acquisition.measurements.map((m) => m.roi_id));
    try {
      const updated = await api<Acquisition>(`${base}/rois/${roiId}`, {
        method: "PATCH",
        json: { geometry: rounded(g), reason },
      });
      const fresh = updated.measurements.find((m) => !before.has(m.roi_id));
      if (fresh) {
        setShapes((all) => all.map((s) => (s.roiId === roiId ? { ...s, roiId: fresh.roi_id, geometry: rounded(g) } : s)));
        setSelected(fresh.roi_id);
      }
      onChange(updated);
      setLastMs(Math.round(performance.now() - t0));
      setMeasured((n) => n + 1);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  async function create(g: Geometry) {
    const t0 = performance.now();
    setBusy(true);
    setError(undefined);
    const before = new Set(acquisition.measurements.map((m) => m.roi_id));
    try {
      const updated = await api<Acquisition>(`${base}/rois`, {
        json: { animal: newAnimal || null, site: newSite, geometry: rounded(g), reason },
      });
      const fresh = updated.measurements.find((m) => !before.has(m.roi_id));
      if (fresh) {
        setShapes((all) => [...all, { roiId: fresh.roi_id, animal: fresh.animal, site: fresh.site, label: fresh.label, geometry: rounded(g) }]);
        setSelected(fresh.roi_id);
      }
      onChange(updated);
      setLastMs(Math.round(performance.now() - t0));
      setMeasured((n) => n + 1);
      setTool("select");
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }

  async function retire() {
    if (!sel) return;
    const why = prompt("Why does this ROI no longer count?", "drawn on the wrong place");
    if (!why) return;
    try {
      const updated = await api<Acquisition>(`${base}/rois/${sel.roiId}/retire`, { json: { reason: why } });
      setShapes((all) => all.filter((s) => s.roiId !== sel.roiId));
      setSelected(null);
      onChange(updated);
    } catch (e) {
      setError(e);
    }
  }

  function onPointerDown(e: PointerEvent) {
    // keyboard nudging needs focus, but focusing must not scroll the page under the pointer
    e.preventDefault();
    svgRef.current?.focus({ preventScroll: true });
    (e.target as Element).setPointerCapture?.(e.pointerId);
    const p = point(e);
    const target = (e.target as SVGElement).dataset;
    if (tool === "polygon") {
      setPolygon((pts) => [...pts, p]);
      return;
    }
    if (tool !== "select") {
      beginDrag({ kind: "draw", type: tool, from: p });
      return;
    }
    if (!canWrite) {
      // a viewer key: look, select and pan; changes would be refused (403)
      const hit = shapes.filter((s) => contains(s.geometry, p)).sort((a, b) => areaOf(a.geometry) - areaOf(b.geometry))[0];
      if (hit) setSelected(hit.roiId);
      else beginDrag({ kind: "pan", x: e.clientX, y: e.clientY });
      return;
    }
    if (target.handle && sel) {
      beginDrag({ kind: target.handle === "rotate" ? "rotate" : "resize", roiId: sel.roiId, vertex: Number(target.vertex ?? 0) });
      return;
    }
    // the smallest shape under the pointer wins (a site ROI inside a whole-body ROI)
    const hits = shapes.filter((s) => contains(s.geometry, p));
    hits.sort((a, b) => areaOf(a.geometry) - areaOf(b.geometry));
    const hit = hits[0];
    if (hit) {
      setSelected(hit.roiId);
      beginDrag({ kind: "move", roiId: hit.roiId, from: p, start: hit.geometry });
    } else {
      setSelected(null);
      beginDrag({ kind: "pan", x: e.clientX, y: e.clientY });
    }
  }

  // Pointer events can arrive faster than renders: the drag and the shape being dragged are
  // also kept in refs, so a release right after a move commits what the user sees.
  const dragRef = useRef<Drag | null>(null);
  const liveGeometry = useRef<Geometry | null>(null);
  function beginDrag(d: Drag) {
    dragRef.current = d;
    liveGeometry.current = null;
    setDrag(d);
  }
  function geometryNow(roiId: string): Geometry | undefined {
    return liveGeometry.current ?? shapes.find((x) => x.roiId === roiId)?.geometry;
  }
  function drawTo(roiId: string, g: Geometry) {
    liveGeometry.current = g;
    setGeometry(roiId, g);
  }

  function onPointerMove(e: PointerEvent) {
    const drag = dragRef.current;
    if (!drag) return;
    const p = point(e);
    switch (drag.kind) {
      case "pan":
        setView((v) => pan(v, e.clientX - drag.x, e.clientY - drag.y));
        dragRef.current = { ...drag, x: e.clientX, y: e.clientY };
        break;
      case "move":
        drawTo(drag.roiId, translate(drag.start, p.row - drag.from.row, p.col - drag.from.col));
        break;
      case "resize":
        drawTo(drag.roiId, resize(geometryNow(drag.roiId)!, p, drag.vertex));
        break;
      case "rotate":
        drawTo(drag.roiId, rotateTowards(geometryNow(drag.roiId)!, p));
        break;
      case "draw":
        liveGeometry.current = shapeFromDrag(drag.type, drag.from, p);
        setDraft(liveGeometry.current);
        break;
    }
  }

  function onPointerUp(e: PointerEvent) {
    const d = dragRef.current;
    if (!d) return;
    dragRef.current = null;
    setDrag(null);
    if (d.kind === "draw") {
      const g = liveGeometry.current ?? shapeFromDrag(d.type, d.from, point(e));
      setDraft(null);
      create(g);
    } else if (d.kind === "move" || d.kind === "resize" || d.kind === "rotate") {
      const g = liveGeometry.current;
      if (g && (d.kind !== "move" || JSON.stringify(g) !== JSON.stringify(d.start))) commit(d.roiId, g);
    }
    liveGeometry.current = null;
  }

  function onWheel(e: WheelEvent) {
    e.preventDefault();
    const r = svgRef.current!.getBoundingClientRect();
    setView((v) => zoomAt(v, e.deltaY < 0 ? 1.25 : 0.8, { x: e.clientX - r.left, y: e.clientY - r.top }));
  }

  // keyboard nudging: arrows move the selected ROI by one image pixel (Shift: ten), saved
  // when the keys are released; Delete retires it; Enter closes a polygon; Escape cancels
  const nudgeTimer = useRef<number>();
  function onKeyDown(e: KeyboardEvent) {
    if (!canWrite) return;
    if (e.key === "Enter" && tool === "polygon" && polygon.length >= 3) {
      create({ type: "polygon", vertices: polygon.map((p) => [p.row, p.col]) });
      setPolygon([]);
      return;
    }
    if (e.key === "Escape") {
      setPolygon([]);
      setDraft(null);
      setTool("select");
      return;
    }
    if (!sel) return;
    const step = info.binning * (e.shiftKey ? 10 : 1);
    const d: Record<string, [number, number]> = {
      ArrowUp: [-step, 0],
      ArrowDown: [step, 0],
      ArrowLeft: [0, -step],
      ArrowRight: [0, step],
    };
    if (d[e.key]) {
      e.preventDefault();
      const g = translate(sel.geometry, d[e.key][0], d[e.key][1]);
      setGeometry(sel.roiId, g);
      clearTimeout(nudgeTimer.current);
      nudgeTimer.current = window.setTimeout(() => commit(sel.roiId, g), 500);
    } else if (e.key === "Delete" || e.key === "Backspace") {
      e.preventDefault();
      retire();
    }
  }

  const transform = `translate(${view.offsetX}px, ${view.offsetY}px) scale(${view.scale})`;
  const photoScale = info.photograph ? info.photograph.binning : 1;
  // each mouse labelled with its ear tag above its ROIs (its whole-body outline if it has one)
  const mice = useMemo(() => {
    const boxes = new Map<string, { r0: number; c0: number; c1: number }>();
    for (const s of shapes) {
      if (!s.animal) continue;
      const b = bbox(s.geometry);
      const o = boxes.get(s.animal);
      boxes.set(s.animal, o ? { r0: Math.min(o.r0, b.r0), c0: Math.min(o.c0, b.c0), c1: Math.max(o.c1, b.c1) } : b);
    }
    return [...boxes.entries()].map(([animal, b]) => ({ animal, row: b.r0, col: (b.c0 + b.c1) / 2 }));
  }, [shapes]);
  const selM = sel ? byRoi.get(sel.roiId) : undefined;

  return (
    <div class="editor">
      <div class="viewer-col">
        <div class="toolbar" role="toolbar" aria-label="ROI tools">
          {(canWrite ? (["select", "circle", "ellipse", "rectangle", "polygon"] as const) : (["select"] as const)).map((t) => (
            <button class={tool === t ? "on" : "secondary"} aria-pressed={tool === t} onClick={() => setTool(t)}>
              {t === "select" ? "Select / move" : t}
            </button>
          ))}
          <span class="spacer" />
          <button class="secondary" title="Zoom in" onClick={() => setView((v) => zoomAt(v, 1.5, { x: W / 2, y: H / 2 }))}>
            +
          </button>
          <button class="secondary" title="Zoom out" onClick={() => setView((v) => zoomAt(v, 1 / 1.5, { x: W / 2, y: H / 2 }))}>
            −
          </button>
          <button class="secondary" onClick={() => setView(fitView(info.sensor_rows, info.sensor_cols, W, H))}>
            Fit
          </button>
        </div>
        <div class="viewer" style={{ width: `${W}px`, height: `${H}px` }}>
          <div class="stage" style={{ transform }}>
            {photo.data && (
              <img
                class="photo"
                src={photo.data}
                alt="photograph"
                style={{ width: `${info.photograph!.cols * photoScale}px`, height: `${info.photograph!.rows * photoScale}px` }}
              />
            )}
            <canvas
              ref={canvasRef}
              class="lum"
              width={info.cols}
              height={info.rows}
              style={{ width: `${info.cols * info.binning}px`, height: `${info.rows * info.binning}px` }}
            />
          </div>
          <svg
            ref={svgRef}
            width={W}
            height={H}
            tabindex={0}
            class={`roi-layer tool-${tool}`}
            data-testid="roi-layer"
            onPointerDown={onPointerDown}
            onPointerMove={onPointerMove}
            onPointerUp={onPointerUp}
            onWheel={onWheel}
            onKeyDown={onKeyDown}
            onDblClick={() => {
              if (tool === "polygon" && polygon.length >= 3) {
                create({ type: "polygon", vertices: polygon.map((p) => [p.row, p.col]) });
                setPolygon([]);
              }
            }}
          >
            <g transform={`translate(${view.offsetX},${view.offsetY}) scale(${view.scale})`}>
              {shapes.map((s) => (
                <path
                  d={svgPath(s.geometry)}
                  class={`roi site-${s.site} ${s.roiId === selected ? "selected" : ""}`}
                  vector-effect="non-scaling-stroke"
                  data-roi={s.roiId}
                />
              ))}
              {draft && <path d={svgPath(draft)} class="roi draft" vector-effect="non-scaling-stroke" />}
              {polygon.length > 0 && (
                <polyline
                  points={polygon.map((p) => `${p.col},${p.row}`).join(" ")}
                  class="roi draft"
                  vector-effect="non-scaling-stroke"
                />
              )}
            </g>
            {mice.map((m) => {
              const top = sensorToScreen(view, { row: m.row, col: m.col });
              // the tag shows the animal the user now names at this mouse's position
              const at = fieldNow.indexOf(m.animal);
              const shown = at >= 0 ? order[at] : m.animal;
              return (
                <text
                  x={top.x}
                  y={Math.max(14, top.y - 6)}
                  class={`tag ${shown !== m.animal ? "changed" : ""}`}
                  text-anchor="middle"
                  data-tag={shown}
                  onPointerDown={(e) => {
                    // drag a tag onto the right mouse: the two swap in the field's order
                    e.stopPropagation();
                    e.preventDefault();
                    (e.target as Element).setPointerCapture?.(e.pointerId);
                    setTagDrag({ animal: m.animal, x: e.clientX, y: e.clientY });
                  }}
                  onPointerMove={(e) => tagDrag && setTagDrag({ ...tagDrag, x: e.clientX, y: e.clientY })}
                  onPointerUp={(e) => {
                    e.stopPropagation();
                    const from = tagDrag?.animal;
                    setTagDrag(null);
                    if (!from) return;
                    const p = point(e);
                    const target = mice.reduce((best, x) => (Math.abs(x.col - p.col) < Math.abs(best.col - p.col) ? x : best));
                    const i = fieldNow.indexOf(from);
                    const j = fieldNow.indexOf(target.animal);
                    if (i >= 0 && j >= 0 && i !== j)
                      setOrder((o) => o.map((x, k) => (k === i ? o[j] : k === j ? o[i] : x)));
                  }}
                >
                  {shown}
                </text>
              );
            })}
            {tagDrag &&
              (() => {
                const r = svgRef.current!.getBoundingClientRect();
                return (
                  <text x={tagDrag.x - r.left} y={tagDrag.y - r.top} class="tag dragging" text-anchor="middle">
                    {order[fieldNow.indexOf(tagDrag.animal)] ?? tagDrag.animal}
                  </text>
                );
              })()}
            {shapes
              .filter((s) => s.site !== "whole_body")
              .map((s) => {
                const m = byRoi.get(s.roiId);
                const c = sensorToScreen(view, centre(s.geometry));
                return m && s.roiId === selected ? (
                  <text x={c.x} y={c.y} class="flux" text-anchor="middle">
                    {formatSci(m.total_flux_ps)}
                  </text>
                ) : null;
              })}
            {sel && <Handles g={sel.geometry} view={view} />}
          </svg>
        </div>
        <p class="hint">
          Drag a shape to move it, its white handle to resize, its round handle to rotate; arrows nudge (Shift ×10);
          wheel zooms, drag the background to pan. The flux is measured by the server when you release. Coordinates are
          sensor pixels; the image is binned {info.binning}×.
        </p>
      </div>
      <aside class="side">
        <ColourControls
          scale={scale}
          kind={kind}
          units={info.units}
          locked={locked}
          onKind={(k) => {
            setKind(k);
            setScale({ kind: k, ...info.scale[k] });
          }}
          onScale={setScale}
          onAuto={() => setScale({ kind, ...info.scale[kind] })}
          onLock={(v) => {
            setLocked(v);
            if (!v) sessionStorage.removeItem(SHARED_SCALE);
          }}
          onWide={async (what) => {
            // one range for every image of the session (or study): the smallest default
            // minimum and the largest default maximum, then kept for every image opened
            setError(undefined);
            try {
              const r = await wideRange(base, what, kind);
              setScale(r);
              setLocked(true);
            } catch (e) {
              setError(e);
            }
          }}
        />
        <section class="card">
          <h3>Selected ROI</h3>
          {sel ? (
            <div data-testid="selected-roi">
              <p>
                <strong>{sel.label ?? siteLabel(sel.site)}</strong> · {sel.animal ?? "no animal"} · {sel.geometry.type}
              </p>
              <p class="flux-big" data-testid="selected-flux" data-ms={lastMs ?? ""} data-measured={measured}>
                {busy ? "measuring…" : selM ? `${formatSci(selM.total_flux_ps)} p/s` : "—"}
              </p>
              <p class="muted">
                {selM ? `mean ${formatSci(selM.radiance_mean)} ${selM.units}, area ${selM.area_cm2?.toFixed(2)} cm²` : ""}
                {lastMs !== null ? ` · measured in ${lastMs} ms` : ""}
              </p>
              <GeometryText g={sel.geometry} />
              <button class="secondary" onClick={retire}>
                Retire…
              </button>
              <RoiHistory base={base} roiId={sel.roiId} />
            </div>
          ) : (
            <p class="muted">Click an ROI on the image or in the table.</p>
          )}
          <label class="field">
            <span class="field-label">Reason kept with each change</span>
            <input value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
          </label>
        </section>
        <section class={`card ${canWrite ? "" : "hidden"}`}>
          <h3>New ROI</h3>
          <p class="hint">Pick a shape above, then drag on the image (polygon: click the corners, Enter to close).</p>
          <label class="field">
            <span class="field-label">Mouse</span>
            <select value={newAnimal} onChange={(e) => setNewAnimal((e.target as HTMLSelectElement).value)} aria-label="New ROI mouse">
              {acquisition.animals.map((a) => (
                <option value={a.identifier}>{a.identifier}</option>
              ))}
              <option value="">(none)</option>
            </select>
          </label>
          <button
            class="secondary"
            disabled={!newAnimal || busy}
            title="Find this mouse on the photograph again and place the study's ROI site template on it"
            onClick={async () => {
              setError(undefined);
              try {
                await api(`${base}/template-rois`, { json: { animal: newAnimal, reason } });
                onFieldChanged();
              } catch (e) {
                setError(e);
              }
            }}
          >
            Apply the study template to {newAnimal || "…"}
          </button>
          <label class="field">
            <span class="field-label">Site</span>
            <select value={newSite} onChange={(e) => setNewSite((e.target as HTMLSelectElement).value)} aria-label="New ROI site">
              {SITES.map((s) => (
                <option value={s}>{siteLabel(s)}</option>
              ))}
            </select>
          </label>
        </section>
        <ErrorBox error={error} />
        <MiceInField
          base={base}
          acquisition={acquisition}
          animals={animals}
          onSaved={onFieldChanged}
          order={order}
          setOrder={setOrder}
        />
      </aside>
      <div class="wide">
        <MeasurementTable acquisition={acquisition} selected={selected} onSelect={setSelected} />
      </div>
    </div>
  );
}

function areaOf(g: Geometry): number {
  const b = bbox(g);
  return (b.r1 - b.r0) * (b.c1 - b.c0);
}

function bbox(g: Geometry): { r0: number; r1: number; c0: number; c1: number } {
  if (g.type === "circle") return { r0: g.center_row - g.radius, r1: g.center_row + g.radius, c0: g.center_col - g.radius, c1: g.center_col + g.radius };
  if (g.type === "polygon") {
    const rs = g.vertices.map((v) => v[0]);
    const cs = g.vertices.map((v) => v[1]);
    return { r0: Math.min(...rs), r1: Math.max(...rs), c0: Math.min(...cs), c1: Math.max(...cs) };
  }
  if (g.type === "union") {
    const bs = g.parts.map(bbox);
    return {
      r0: Math.min(...bs.map((b) => b.r0)),
      r1: Math.max(...bs.map((b) => b.r1)),
      c0: Math.min(...bs.map((b) => b.c0)),
      c1: Math.max(...bs.map((b) => b.c1)),
    };
  }
  const ext = g.type === "ellipse" ? Math.max(g.semi_axis_col, g.semi_axis_row) : Math.hypot(g.width, g.height) / 2;
  return { r0: g.center_row - ext, r1: g.center_row + ext, c0: g.center_col - ext, c1: g.center_col + ext };
}

function Handles({ g, view }: { g: Geometry; view: View }) {
  const pts: { p: Point; kind: string; vertex?: number }[] = [];
  if (g.type === "polygon") g.vertices.forEach(([row, col], i) => pts.push({ p: { row, col }, kind: "resize", vertex: i }));
  else if (g.type !== "union") pts.push({ p: handle(g), kind: "resize" });
  const rot = rotationHandle(g);
  if (rot) pts.push({ p: rot, kind: "rotate" });
  return (
    <g>
      {pts.map(({ p, kind, vertex }) => {
        const s = sensorToScreen(view, p);
        return kind === "rotate" ? (
          <circle cx={s.x} cy={s.y} r={6} class="handle rotate" data-handle="rotate" />
        ) : (
          <rect x={s.x - 5} y={s.y - 5} width={10} height={10} class="handle" data-handle="resize" data-vertex={vertex ?? 0} />
        );
      })}
    </g>
  );
}

interface RoiVersionRead extends RoiInfo {
  is_current: boolean;
  supersedes_id: string | null;
  reason: string | null;
  created_at: string;
}

/** The versions of the selected ROI, newest first, each with its reason (GET …/roi-history). */
function RoiHistory({ base, roiId }: { base: string; roiId: string }) {
  const [open, setOpen] = useState(false);
  const history = useLoad(
    () => (open ? allLinked<RoiVersionRead>(`${base}/roi-history`) : Promise.resolve([] as RoiVersionRead[])),
    [open, roiId],
  );
  const chain: RoiVersionRead[] = [];
  const byId = new Map((history.data ?? []).map((v) => [v.roi_id, v]));
  for (let v = byId.get(roiId); v; v = v.supersedes_id ? byId.get(v.supersedes_id) : undefined) chain.push(v);
  return (
    <details class="history" onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>History</summary>
      {open && !history.data ? <Loading what="the history" /> : null}
      <ol data-testid="roi-history">
        {chain.map((v) => (
          <li>
            <span class="mono">{v.created_at.replace("T", " ").slice(0, 19)}</span> · {v.source}
            {v.reason ? ` · “${v.reason}”` : ""}
            <br />
            <span class="muted mono">{JSON.stringify(v.geometry)}</span>
          </li>
        ))}
      </ol>
    </details>
  );
}

function GeometryText({ g }: { g: Geometry }) {
  const f = (x: number) => x.toFixed(1);
  let text = "";
  if (g.type === "circle") text = `centre (row ${f(g.center_row)}, col ${f(g.center_col)}), radius ${f(g.radius)}`;
  else if (g.type === "ellipse")
    text = `centre (${f(g.center_row)}, ${f(g.center_col)}), semi-axes ${f(g.semi_axis_col)} × ${f(g.semi_axis_row)}, ${f(g.angle_deg ?? 0)}°`;
  else if (g.type === "rectangle")
    text = `centre (${f(g.center_row)}, ${f(g.center_col)}), ${f(g.width)} × ${f(g.height)}, ${f(g.angle_deg ?? 0)}°`;
  else if (g.type === "polygon") text = `${g.vertices.length} vertices`;
  else text = `${g.parts.length} parts`;
  return <p class="muted mono">{text} (sensor px)</p>;
}

function ColourControls(props: {
  scale: ColourScale;
  kind: ScaleKind;
  units: string;
  locked: boolean;
  onKind: (k: ScaleKind) => void;
  onScale: (s: ColourScale) => void;
  onAuto: () => void;
  onLock: (v: boolean) => void;
  onWide: (what: "session" | "study") => void;
}) {
  const { scale, units } = props;
  const [minText, setMin] = useState(scale.min.toPrecision(3));
  const [maxText, setMax] = useState(scale.max.toPrecision(3));
  const [error, setError] = useState<string>();
  useEffect(() => {
    setMin(scale.min.toPrecision(3));
    setMax(scale.max.toPrecision(3));
  }, [scale.min, scale.max]);
  function apply(e: Event) {
    e.preventDefault();
    try {
      props.onScale(checkScale({ kind: scale.kind, min: Number(minText), max: Number(maxText) }));
      setError(undefined);
    } catch (err) {
      setError((err as Error).message);
    }
  }
  return (
    <section class="card" aria-label="Colour scale">
      <h3>Colour scale</h3>
      <div class="colour">
        <ColourBar scale={scale} />
        <form onSubmit={apply} class="grid">
          <label class="field">
            <span class="field-label">Max [{units}]</span>
            <input value={maxText} onInput={(e) => setMax((e.target as HTMLInputElement).value)} aria-label="Colour max" />
          </label>
          <label class="field">
            <span class="field-label">Min [{units}]</span>
            <input value={minText} onInput={(e) => setMin((e.target as HTMLInputElement).value)} aria-label="Colour min" />
          </label>
          <div class="actions">
            <select value={props.kind} onChange={(e) => props.onKind((e.target as HTMLSelectElement).value as ScaleKind)} aria-label="Scale type">
              <option value="log">log</option>
              <option value="linear">linear</option>
            </select>
            <button type="submit">Apply</button>
            <button type="button" class="secondary" onClick={props.onAuto}>
              Auto
            </button>
          </div>
          {error && <p class="error">{error}</p>}
        </form>
      </div>
      <label class="check">
        <input type="checkbox" checked={props.locked} onChange={(e) => props.onLock((e.target as HTMLInputElement).checked)} />
        Same scale for every image I open
      </label>
      <div class="actions">
        <button type="button" class="secondary" onClick={() => props.onWide("session")}>
          Range of this session
        </button>
        <button type="button" class="secondary" onClick={() => props.onWide("study")}>
          Range of the study
        </button>
      </div>
    </section>
  );
}

async function wideRange(base: string, what: "session" | "study", kind: ScaleKind): Promise<ColourScale> {
  const study = base.split("/sessions/")[0];
  const session = base.split("/acquisitions/")[0];
  const sessions =
    what === "session" ? [session] : (await all<{ id: string }>(`${study}/sessions`)).map((x) => `${study}/sessions/${x.id}`);
  const infos: ImageInfo[] = [];
  for (const s of sessions) {
    for (const a of await allLinked<Acquisition>(`${s}/acquisitions`)) {
      try {
        infos.push(await api<ImageInfo>(`${s}/acquisitions/${a.id}/image`));
      } catch {
        // an acquisition imported from a table has no image
      }
    }
  }
  return {
    kind,
    min: Math.min(...infos.map((i) => i.scale[kind].min)),
    max: Math.max(...infos.map((i) => i.scale[kind].max)),
  };
}

export function ColourBar({ scale }: { scale: ColourScale }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const h = 180;
  useEffect(() => {
    const ctx = ref.current?.getContext("2d");
    if (!ctx) return;
    for (let y = 0; y < h; y++) {
      const [r, g, b] = rampColour(1 - y / (h - 1));
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(0, y, 18, 1);
    }
  }, []);
  let marks: number[] = [];
  try {
    marks = ticks(checkScale(scale));
  } catch {
    marks = [];
  }
  return (
    <div class="colourbar" data-testid="colourbar">
      <canvas ref={ref} width={18} height={h} />
      <div class="ticks">
        {marks.map((v) => {
          const t = normalise(scale, v);
          const y = (1 - (Number.isNaN(t) ? 0 : t)) * h;
          return (
            <span style={{ top: `${y}px` }} class="tick">
              {formatSci(v)}
            </span>
          );
        })}
      </div>
    </div>
  );
}

/**
 * The mice in the field, left to right, as the server placed them. Wrong order or a wrong
 * ear tag is fixed here: drag a tag onto another position (the two swap) or pick another
 * animal, then save with a reason (PUT …/field: audited; each mouse's ROIs follow).
 */
function MiceInField({
  base,
  acquisition,
  animals,
  onSaved,
  order,
  setOrder,
}: {
  base: string;
  acquisition: Acquisition;
  animals: Animal[];
  onSaved: () => void;
  order: string[];
  setOrder: (f: (o: string[]) => string[]) => void;
}) {
  const original = acquisition.animals.map((a) => a.identifier);
  const [dragged, setDragged] = useState<number | null>(null);
  const draggedRef = useRef<number | null>(null);
  const [reason, setReason] = useState("");
  const [error, setError] = useState<unknown>();
  const changed = order.join() !== original.join();
  function swap(i: number, j: number) {
    setOrder((o) => {
      const next = [...o];
      [next[i], next[j]] = [next[j], next[i]];
      return next;
    });
  }
  async function save() {
    setError(undefined);
    try {
      await api(`${base}/field`, { method: "PUT", json: { animals: order, reason } });
      onSaved();
    } catch (e) {
      setError(e);
    }
  }
  return (
    <section class="card" aria-label="Mice in the field">
      <h3>Mice in the field (left → right)</h3>
      <ol
        class="mice"
        data-testid="mice"
        onPointerLeave={() => {
          draggedRef.current = null;
          setDragged(null);
        }}
      >
        {order.map((ident, i) => (
          <li
            class={`mouse ${dragged === i ? "dragging" : ""} ${dragged !== null && dragged !== i ? "target" : ""}`}
            data-position={i}
            // pointer events rather than HTML drag and drop: the same on mouse, pen and touch
            onPointerDown={(e) => {
              if ((e.target as HTMLElement).tagName === "SELECT") return;
              e.preventDefault();
              draggedRef.current = i; // a ref: the release may come before the next render
              setDragged(i);
            }}
            onPointerUp={() => {
              const from = draggedRef.current;
              if (from !== null && from !== i) swap(from, i);
              draggedRef.current = null;
              setDragged(null);
            }}
          >
            <span class="grip" aria-hidden="true">
              ⋮⋮
            </span>
            <select
              value={ident}
              aria-label={`Mouse ${i + 1}`}
              onChange={(e) => {
                const value = (e.target as HTMLSelectElement).value;
                setOrder((o) => o.map((x, k) => (k === i ? value : x)));
              }}
            >
              {[...new Set([ident, ...animals.filter((a) => !a.archived_at).map((a) => a.identifier)])].map((x) => (
                <option value={x}>{x}</option>
              ))}
            </select>
            {ident !== original[i] && <span class="pill treatment">was {original[i] ?? "—"}</span>}
          </li>
        ))}
      </ol>
      {changed && (
        <div>
          <label class="field">
            <span class="field-label">Why (kept in the audit trail)</span>
            <input value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} aria-label="Field correction reason" />
          </label>
          <div class="actions">
            <button onClick={save} disabled={reason.trim().length < 3}>
              Save mouse order
            </button>
            <button class="secondary" onClick={() => setOrder(() => original)}>
              Undo
            </button>
          </div>
        </div>
      )}
      <ErrorBox error={error} />
    </section>
  );
}

export type { Measurement };
