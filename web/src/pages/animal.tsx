import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { all, allLinked, api, blobUrl, request } from "../lib/api";
import { type ColourScale, checkScale, colourise, formatSci } from "../lib/colour";
import { type Geometry, type View, svgPath } from "../lib/geometry";
import type { Acquisition, Animal, Arm, ImagingSession, Study } from "../types";
import { SITES, siteLabel } from "../types";
import { ErrorBox, Loading, useLoad } from "../ui";
import { ColourBar, type ImageInfo } from "./acquisition";

interface SeriesPoint {
  measurement_id: string;
  animal: string;
  day: number;
  value: number | null;
  flags: string[];
}

interface Seen {
  session: ImagingSession;
  acquisition: Acquisition;
}

/** One animal across the study: its images side by side on one colour scale (Living Image's
 * sequence view), its growth curve per site, its QC flags and end record. */
export function AnimalPage({ study, animalId }: { study: Study; animalId: string }) {
  const base = `/studies/${study.id}`;
  const animal = useLoad(() => api<Animal>(`${base}/animals/${animalId}`), [animalId]);
  const arms = useLoad(() => all<Arm>(`${base}/arms`), [study.id]);
  const seen = useLoad(async () => {
    const sessions = await all<ImagingSession>(`${base}/sessions`);
    const out: Seen[] = [];
    for (const s of sessions) {
      const acqs = await allLinked<Acquisition>(`${base}/sessions/${s.id}/acquisitions`);
      for (const a of acqs) if (a.animals.some((x) => x.animal_id === animalId)) out.push({ session: s, acquisition: a });
    }
    return out.sort((a, b) => a.session.day - b.session.day);
  }, [animalId]);
  const [site, setSite] = useState("whole_body");
  const series = useLoad(
    () => api<{ unit: string; points: SeriesPoint[] }>(`${base}/series?site=${site}`),
    [site, study.id],
  );
  const a = animal.data;
  const points = (series.data?.points ?? []).filter((p) => a && p.animal === a.identifier);
  const views = [...new Set((seen.data ?? []).map((s) => s.acquisition.view))];
  const [view, setView] = useState<string | null>(null);
  const shownView = view ?? views[0] ?? null;
  return (
    <div>
      <nav class="crumbs">
        <a href={`#/s/${study.id}/setup`}>Animals</a> › {a?.identifier ?? "…"}
      </nav>
      <ErrorBox error={animal.error ?? seen.error ?? series.error} />
      {a && (
        <section class="card">
          <h2>Mouse {a.identifier}</h2>
          <p>
            {arms.data?.find((x) => x.id === a.arm_id)?.name ?? "…"} · cage {a.cage ?? "—"} · {a.sex} · {a.strain ?? ""}
            {a.date_of_birth ? ` · born ${a.date_of_birth}` : ""}
          </p>
          <p data-testid="end-record">
            {a.end ? (
              <>
                <strong>End:</strong> {a.end.date}, {a.end.reason.replace(/_/g, " ")}
                {a.end.note ? ` — ${a.end.note}` : ""}
              </>
            ) : (
              <span class="muted">No end recorded (still in the study).</span>
            )}
          </p>
        </section>
      )}
      <section class="card">
        <h2>Growth</h2>
        <label class="field inline">
          <span class="field-label">Site</span>
          <select value={site} onChange={(e) => setSite((e.target as HTMLSelectElement).value)} aria-label="Growth site">
            {SITES.filter((s) => s !== "custom").map((s) => (
              <option value={s}>{siteLabel(s)}</option>
            ))}
          </select>
        </label>
        {!series.data ? <Loading what="the series" /> : <GrowthPlot points={points} unit={series.data.unit} />}
        {points.length > 0 && (
          <table class="list compact" data-testid="animal-series">
            <thead>
              <tr>
                <th>Day</th>
                <th>{siteLabel(site)} [{series.data?.unit}]</th>
                <th>QC flags</th>
              </tr>
            </thead>
            <tbody>
              {points.map((p) => (
                <tr>
                  <td>{p.day}</td>
                  <td class="num">{formatSci(p.value)}</td>
                  <td>{p.flags.join(", ")}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card">
        <h2>Images across sessions</h2>
        {!seen.data ? (
          <Loading what="the images" />
        ) : seen.data.length === 0 ? (
          <p class="muted">Not imaged yet.</p>
        ) : (
          <>
            <div class="actions">
              {views.map((v) => (
                <button class={v === shownView ? "on" : "secondary"} onClick={() => setView(v)}>
                  {v}
                </button>
              ))}
            </div>
            {a && <Sequence study={study} seen={seen.data.filter((s) => s.acquisition.view === shownView)} identifier={a.identifier} />}
          </>
        )}
      </section>
    </div>
  );
}

function GrowthPlot({ points, unit }: { points: SeriesPoint[]; unit: string }) {
  const pos = points.filter((p) => p.value !== null && p.value > 0);
  if (pos.length === 0) return <p class="muted">No positive value at this site yet.</p>;
  const W = 520;
  const H = 220;
  const m = { l: 64, r: 12, t: 10, b: 32 };
  const days = pos.map((p) => p.day);
  const logs = pos.map((p) => Math.log10(p.value!));
  const d0 = Math.min(...days);
  const d1 = Math.max(...days, d0 + 1);
  const y0 = Math.floor(Math.min(...logs));
  const y1 = Math.max(Math.ceil(Math.max(...logs)), y0 + 1);
  const x = (d: number) => m.l + ((d - d0) / (d1 - d0)) * (W - m.l - m.r);
  const y = (v: number) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
  const decades = Array.from({ length: y1 - y0 + 1 }, (_, i) => y0 + i);
  return (
    <svg width={W} height={H} class="growth" role="img" aria-label={`growth curve [${unit}]`}>
      {decades.map((e) => (
        <g>
          <line x1={m.l} x2={W - m.r} y1={y(e)} y2={y(e)} class="grid" />
          <text x={m.l - 6} y={y(e) + 4} text-anchor="end" class="axis">
            1e{e}
          </text>
        </g>
      ))}
      {[...new Set(days)].map((d) => (
        <text x={x(d)} y={H - 12} text-anchor="middle" class="axis">
          {d}
        </text>
      ))}
      <text x={(W + m.l) / 2} y={H - 1} text-anchor="middle" class="axis">
        day since injection
      </text>
      <polyline points={pos.map((p, i) => `${x(p.day)},${y(logs[i])}`).join(" ")} class="series" />
      {pos.map((p, i) => (
        <circle cx={x(p.day)} cy={y(logs[i])} r={3.5} class={p.flags.length ? "point flagged" : "point"}>
          <title>
            day {p.day}: {formatSci(p.value)} {unit}
            {p.flags.length ? ` (${p.flags.join(", ")})` : ""}
          </title>
        </circle>
      ))}
    </svg>
  );
}

interface Loaded {
  seen: Seen;
  info: ImageInfo;
  radiance: Float32Array;
  photo: string | null;
}

/** The animal cut out of each image, all on one colour scale with one colour bar. */
function Sequence({ study, seen, identifier }: { study: Study; seen: Seen[]; identifier: string }) {
  const loaded = useLoad(
    () =>
      Promise.all(
        seen.map(async (s): Promise<Loaded> => {
          const b = `/studies/${study.id}/sessions/${s.session.id}/acquisitions/${s.acquisition.id}`;
          const info = await api<ImageInfo>(`${b}/image`);
          const radiance = new Float32Array(await (await request(`${b}/image/radiance`)).arrayBuffer());
          const photo = info.photograph ? await blobUrl(`${b}/image/photograph.png`) : null;
          return { seen: s, info, radiance, photo };
        }),
      ),
    [seen.map((s) => s.acquisition.id).join()],
  );
  // one scale for the whole sequence: from the smallest default minimum to the largest maximum
  const shared = useMemo<ColourScale | null>(() => {
    if (!loaded.data?.length) return null;
    return {
      kind: "log",
      min: Math.min(...loaded.data.map((l) => l.info.scale.log.min)),
      max: Math.max(...loaded.data.map((l) => l.info.scale.log.max)),
    };
  }, [loaded.data]);
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  if (!loaded.data || !shared) return <Loading what="the images" />;
  return (
    <div class="sequence" data-testid="sequence">
      {loaded.data.map((l) => (
        <figure class="thumb">
          <Thumb l={l} identifier={identifier} scale={shared} />
          <figcaption>
            day {l.seen.session.day} · {l.seen.acquisition.click_number}
          </figcaption>
        </figure>
      ))}
      <div>
        <ColourBar scale={shared} />
        <p class="hint">{loaded.data[0].info.units}</p>
      </div>
    </div>
  );
}

function Thumb({ l, identifier, scale }: { l: Loaded; identifier: string; scale: ColourScale }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const { info } = l;
  const rois = info.rois.filter((r) => r.animal === identifier && r.geometry) as { geometry: Geometry; site: string }[];
  // the animal's ROIs, with a margin, fill the thumbnail
  const W = 150;
  const H = 260;
  const view: View = useMemo(() => {
    let r0 = Infinity;
    let r1 = -Infinity;
    let c0 = Infinity;
    let c1 = -Infinity;
    for (const r of rois) {
      const g = r.geometry;
      const ext = "radius" in g ? g.radius : "semi_axis_row" in g ? Math.max(g.semi_axis_row, g.semi_axis_col) : "width" in g ? Math.hypot(g.width, g.height) / 2 : 0;
      const cs = g.type === "polygon" ? g.vertices : "center_row" in g ? [[g.center_row, g.center_col]] : [];
      for (const [rr, cc] of cs as number[][]) {
        r0 = Math.min(r0, rr - ext);
        r1 = Math.max(r1, rr + ext);
        c0 = Math.min(c0, cc - ext);
        c1 = Math.max(c1, cc + ext);
      }
    }
    if (!Number.isFinite(r0)) return { scale: W / info.sensor_cols, offsetX: 0, offsetY: 0 };
    const cr = (r0 + r1) / 2;
    const cc = (c0 + c1) / 2;
    const s = Math.min(W / ((c1 - c0) * 1.5 + 1), H / ((r1 - r0) * 1.3 + 1));
    return { scale: s, offsetX: W / 2 - s * cc, offsetY: H / 2 - s * cr };
  }, [info]);
  useEffect(() => {
    const c = canvas.current;
    if (!c) return;
    try {
      checkScale(scale);
    } catch {
      return;
    }
    const ctx = c.getContext("2d")!;
    const img = ctx.createImageData(info.cols, info.rows);
    colourise(l.radiance, scale, img.data, 200);
    ctx.putImageData(img, 0, 0);
  }, [l, scale]);
  const transform = `translate(${view.offsetX}px, ${view.offsetY}px) scale(${view.scale})`;
  const pb = info.photograph?.binning ?? 1;
  return (
    <div class="viewer small" style={{ width: `${W}px`, height: `${H}px` }}>
      <div class="stage" style={{ transform }}>
        {l.photo && (
          <img class="photo" src={l.photo} alt="" style={{ width: `${info.photograph!.cols * pb}px`, height: `${info.photograph!.rows * pb}px` }} />
        )}
        <canvas
          ref={canvas}
          class="lum"
          width={info.cols}
          height={info.rows}
          style={{ width: `${info.cols * info.binning}px`, height: `${info.rows * info.binning}px` }}
        />
      </div>
      <svg width={W} height={H} class="roi-layer">
        <g transform={`translate(${view.offsetX},${view.offsetY}) scale(${view.scale})`}>
          {rois.map((r) => (
            <path d={svgPath(r.geometry)} class={`roi site-${r.site}`} vector-effect="non-scaling-stroke" />
          ))}
        </g>
      </svg>
    </div>
  );
}
