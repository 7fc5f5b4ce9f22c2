import { useEffect, useState } from "preact/hooks";
import { all, allLinked, api, blobUrl, download } from "../lib/api";
import { formatSci } from "../lib/colour";
import { resultDefinitions } from "../lib/definitions";
import type { Arm, Study } from "../types";
import { SITES, siteLabel } from "../types";
import { ErrorBox, Field, Loading, fmtDate, useLoad } from "../ui";

interface Outcome {
  status: "ok" | "not_computed";
  reason: string | null;
  result: Record<string, unknown> | null;
}

interface Comparison {
  id: string;
  treatment_arm_id: string;
  control_arm_id: string;
  site: string;
  metric: string;
  unit: string;
  parameters: Record<string, unknown>;
  n_animals: Record<string, number>;
  inputs_changed: boolean;
  software: Record<string, string>;
  results: Record<string, Outcome | null>;
  created_at: string;
}

const ANALYSES: [string, string][] = [
  ["per_day", "Per-day tests (Welch t, Mann–Whitney), multiplicity-corrected"],
  ["auc", "Area under the curve per animal"],
  ["growth_rate", "Growth rate per animal (slope of log signal)"],
  ["mixed_model", "Linear mixed model (arm × day, random intercept and slope)"],
  ["tc", "T/C % per day (geometric means)"],
  ["tgi", "%TGI at the end day"],
  ["incidence", "Incidence of metastasis (needs a threshold)"],
  ["survival", "Metastasis-free survival (needs a threshold)"],
];

export function ComparePage({ study }: { study: Study }) {
  const base = `/studies/${study.id}`;
  const arms = useLoad(() => all<Arm>(`${base}/arms`), [study.id]);
  const list = useLoad(() => allLinked<Comparison>(`${base}/comparisons`), [study.id]);
  const [shown, setShown] = useState<Comparison | null>(null);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const treatments = (arms.data ?? []).filter((a) => a.role === "treatment");
  const armName = new Map((arms.data ?? []).map((a) => [a.id, a.name]));

  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const get = (k: string) => (f.get(k) as string | null)?.trim() ?? "";
    const body: Record<string, unknown> = {
      treatment_arm_id: get("treatment_arm_id"),
      site: get("site"),
      metric: get("metric"),
      scale: get("scale"),
      correction: get("correction"),
      analyses: f.getAll("analyses"),
    };
    if (get("floor")) body.floor = Number(get("floor"));
    if (get("day_from") || get("day_to")) body.window = { day_from: Number(get("day_from") || 0), day_to: Number(get("day_to") || 1e6) };
    if (get("threshold")) body.threshold = { value: Number(get("threshold")), consecutive: Number(get("consecutive") || 1) };
    setBusy(true);
    setError(undefined);
    try {
      const c = await api<Comparison>(`${base}/comparisons`, { json: body });
      setShown(c);
      list.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div>
      <section class="card">
        <h2>Compare a treatment arm with its control</h2>
        {!arms.data ? (
          <Loading what="arms" />
        ) : treatments.length === 0 ? (
          <p class="muted">This study has no treatment arm yet (Set-up tab).</p>
        ) : (
          <form class="grid compare-form" onSubmit={submit} aria-label="Compare arms">
            <Field label="Treatment arm" hint="Compared with the control arm it names.">
              <select name="treatment_arm_id">
                {treatments.map((a) => (
                  <option value={a.id}>
                    {a.name} vs {armName.get(a.control_arm_id ?? "") ?? "?"}
                  </option>
                ))}
              </select>
            </Field>
            <Field label="Site">
              <select name="site">
                {SITES.filter((s) => s !== "custom").map((s) => (
                  <option value={s}>{siteLabel(s)}</option>
                ))}
              </select>
            </Field>
            <Field label="Metric">
              <select name="metric">
                <option value="total_flux_ps">total flux [p/s]</option>
                <option value="radiance_mean">mean radiance [p/s/cm²/sr]</option>
              </select>
            </Field>
            <Field label="Scale">
              <select name="scale">
                <option value="log10">log10 (default)</option>
                <option value="linear">linear</option>
              </select>
            </Field>
            <Field label="Floor [p/s]" hint="Values below are raised to it before the log (detection limit). Default 1e4.">
              <input name="floor" type="number" step="any" min="0" value="10000" />
            </Field>
            <Field label="Multiplicity correction">
              <select name="correction">
                <option value="holm">Holm (default)</option>
                <option value="bh">Benjamini–Hochberg</option>
              </select>
            </Field>
            <Field label="Days from" hint="Empty: every day.">
              <input name="day_from" type="number" step="any" min="0" />
            </Field>
            <Field label="Days to">
              <input name="day_to" type="number" step="any" min="0" />
            </Field>
            <Field label="Metastasis threshold [p/s]" hint="For incidence and survival; empty: skipped.">
              <input name="threshold" type="number" step="any" min="0" placeholder="3e6" />
            </Field>
            <Field label="…on consecutive images">
              <input name="consecutive" type="number" min="1" max="10" value="2" />
            </Field>
            <fieldset class="wide">
              <legend>Analyses</legend>
              {ANALYSES.map(([id, label]) => (
                <label class="check">
                  <input type="checkbox" name="analyses" value={id} checked={!["incidence", "survival"].includes(id) || undefined} /> {label}
                </label>
              ))}
            </fieldset>
            <div class="actions wide">
              <button type="submit" disabled={busy}>
                {busy ? "Computing…" : "Compare"}
              </button>
              <button type="button" class="secondary" onClick={() => download(`${base}/export/prism.csv`, `${study.name}-prism.csv`).catch(setError)}>
                Download Prism CSV
              </button>
              <button
                type="button"
                class="secondary"
                onClick={() => download(`${base}/measurements?format=csv`, `${study.name}-measurements.csv`).catch(setError)}
              >
                Download measurements CSV
              </button>
            </div>
          </form>
        )}
        <ErrorBox error={error ?? arms.error} />
      </section>
      <SummaryTable base={base} />
      <section>
        <h2>Stored comparisons</h2>
        <ErrorBox error={list.error} />
        {list.data && list.data.length === 0 && <p class="muted">None yet.</p>}
        <ul class="comparisons">
          {(list.data ?? []).map((c) => (
            <li>
              <button class="link" onClick={() => setShown(c)}>
                {armName.get(c.treatment_arm_id)} vs {armName.get(c.control_arm_id)} · {siteLabel(c.site)} · {c.metric} ·{" "}
                {fmtDate(c.created_at)}
              </button>
              {c.inputs_changed && <span class="pill bad">data changed since</span>}
            </li>
          ))}
        </ul>
      </section>
      {shown && <ComparisonView base={base} c={shown} armName={armName} />}
    </div>
  );
}

function ComparisonView({ base, c, armName }: { base: string; c: Comparison; armName: Map<string, string> }) {
  const defs = useLoad(resultDefinitions, []).data ?? {};
  // the waterfall is drawn for one day: the last imaging day of the per-day tests
  const days = ((c.results.per_day?.result?.rows ?? []) as { day: number }[]).map((r) => r.day);
  const lastDay = days.length ? Math.max(...days) : null;
  const kinds = [
    "growth",
    "spaghetti",
    ...(lastDay !== null ? [`waterfall?day=${lastDay}`] : []),
    ...(c.results.survival?.status === "ok" ? ["survival", "incidence"] : []),
  ];
  const path = `${base}/comparisons/${c.id}`;
  const [error, setError] = useState<unknown>();
  return (
    <section class="card" data-testid="comparison">
      <h2>
        {armName.get(c.treatment_arm_id)} vs {armName.get(c.control_arm_id)} — {siteLabel(c.site)}, {c.metric} [{c.unit}]
      </h2>
      <p class="muted">
        n = {Object.entries(c.n_animals).map(([k, v]) => `${k}: ${v}`).join(", ")} · parameters:{" "}
        <code>{JSON.stringify({ scale: c.parameters.scale, floor: c.parameters.floor, correction: c.parameters.correction })}</code>
        {c.inputs_changed ? " · the measurements changed since: results shown as stored" : ""}
      </p>
      <div class="actions">
        {["per_day", "animals", "mixed_model", "survival"].map((t) => (
          <button class="secondary" onClick={() => download(`${path}/tables/${t}`, `${t}.csv`).catch(setError)}>
            {t}.csv
          </button>
        ))}
        <button class="secondary" onClick={() => download(path, `comparison-${c.id}.json`).catch(setError)}>
          all results (JSON)
        </button>
        {kinds.map((k) => (
          <button
            class="secondary"
            onClick={() => download(`${path}/plots/${k}${k.includes("?") ? "&" : "?"}format=svg`, `${k.split("?")[0]}.svg`).catch(setError)}
          >
            {k.split("?")[0]}.svg
          </button>
        ))}
      </div>
      <ErrorBox error={error} />
      <div class="plots">
        {kinds.map((k) => (
          <Plot path={`${path}/plots/${k}`} alt={`${k.replace("?day=", " plot, day ")}${k.includes("?") ? "" : " plot"}`} />
        ))}
      </div>
      {Object.entries(c.results)
        .filter((e): e is [string, Outcome] => e[1] !== null) // analyses not asked for
        .map(([name, o]) => (
          <AnalysisTable name={name} o={o} defs={defs} />
        ))}
    </section>
  );
}

function Plot({ path, alt }: { path: string; alt: string }) {
  const [url, setUrl] = useState<string>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    let u: string | undefined;
    blobUrl(path).then((x) => setUrl((u = x)), setError);
    return () => u && URL.revokeObjectURL(u);
  }, [path]);
  return (
    <figure class="plot">
      {url ? <img src={url} alt={alt} data-testid="plot" /> : error ? <ErrorBox error={error} /> : <Loading what={alt} />}
      <figcaption>{alt}</figcaption>
    </figure>
  );
}

/** An estimate {name, estimate, ci_low, ci_high} or a test {test, statistic, p_value, …}. */
function cell(v: unknown): { text: string; title?: string } {
  if (v === null || v === undefined) return { text: "—" };
  if (typeof v === "number") return { text: Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? formatSci(v) : String(Number(v.toPrecision(4))) };
  if (typeof v === "string" || typeof v === "boolean") return { text: String(v) };
  if (Array.isArray(v)) return { text: v.map((x) => cell(x).text).join(", ") };
  const o = v as Record<string, unknown>;
  if ("estimate" in o) {
    const e = cell(o.estimate).text;
    const ci = o.ci_low !== undefined ? ` [${cell(o.ci_low).text}, ${cell(o.ci_high).text}]` : "";
    return { text: `${e}${ci}`, title: `${o.name ?? ""}${o.confidence ? ` (${Number(o.confidence) * 100} % CI)` : ""}` };
  }
  if ("p_value" in o) {
    const adj = o.p_adjusted !== null && o.p_adjusted !== undefined ? ` (adj. ${cell(o.p_adjusted).text})` : "";
    return {
      text: `p = ${cell(o.p_value).text}${adj}`,
      title: `${o.test ?? ""}: statistic ${cell(o.statistic).text}${o.df !== null && o.df !== undefined ? `, df ${cell(o.df).text}` : ""}${o.correction ? `, ${o.correction} correction` : ""}`,
    };
  }
  return { text: JSON.stringify(o).slice(0, 80) };
}

const DEFINITIONS: Record<string, string> = {
  per_day: "For each imaging day: the treated − control difference of mean log10 values with Welch's t-test, and the Hodges–Lehmann shift with the Mann–Whitney test; p-values corrected across days.",
  auc: "Area under each animal's curve (trapezoids of the log10 value over days), compared between arms.",
  growth_rate: "Each animal's least-squares slope of the log10 value against day, compared between arms.",
  mixed_model: "Linear mixed model of log10 value ~ day × arm with a random intercept and slope per animal (REML).",
  tc: "T/C % = 100 × geometric mean(treated) / geometric mean(control) per day, with a 95 % CI.",
  tgi: "%TGI = 100 × (1 − ΔT/ΔC), the change of geometric means from the start to the end day.",
  incidence: "Animals positive (above the threshold on consecutive images) per day; Fisher's exact test.",
  survival: "Time to metastasis (threshold rule): Kaplan–Meier, log-rank test and Cox hazard ratio.",
};

function AnalysisTable({ name, o, defs }: { name: string; o: Outcome; defs: Record<string, string> }) {
  if (o.status !== "ok" || !o.result) {
    return (
      <div class="analysis">
        <h3 title={DEFINITIONS[name]}>{name.replace(/_/g, " ")}</h3>
        <p class="muted">Not computed: {o.reason}</p>
      </div>
    );
  }
  const r = o.result;
  const rows = (r.rows ?? r.fixed_effects) as Record<string, unknown>[] | undefined;
  const scalars = Object.entries(r).filter(([k, v]) => k !== "rows" && k !== "fixed_effects" && k !== "curves" && k !== "exclusions" && k !== "adjustments" && v !== null && typeof v !== "object");
  const nested = Object.entries(r).filter(([, v]) => v !== null && typeof v === "object" && !Array.isArray(v));
  return (
    <div class="analysis" data-analysis={name}>
      <h3 title={DEFINITIONS[name]}>{name.replace(/_/g, " ")}</h3>
      <p class="hint">{DEFINITIONS[name]}</p>
      <table class="list compact kv">
        <tbody>
          {[...scalars, ...nested].map(([k, v]) => {
            const c = cell(v);
            return (
              <tr>
                <th title={defs[k]} class={defs[k] ? "defined" : ""}>
                  {k.replace(/_/g, " ")}
                </th>
                <td title={c.title ?? defs[k]}>{c.text}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {rows && rows.length > 0 && (
        <table class="list compact">
          <thead>
            <tr>
              {Object.keys(rows[0]).map((k) => (
                <th title={defs[k]} class={defs[k] ? "defined" : ""}>
                  {k.replace(/_/g, " ")}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr>
                {Object.values(row).map((v) => {
                  const c = cell(v);
                  return <td title={c.title}>{c.text}</td>;
                })}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

interface SummaryRow {
  arm: string;
  day: number;
  n: number;
  geometric_mean: number | null;
  geometric_ci_low: number | null;
  geometric_ci_high: number | null;
}

/** Per arm and day: n and the geometric mean with its 95 % CI (GET /studies/{id}/summary). */
function SummaryTable({ base }: { base: string }) {
  const [site, setSite] = useState("whole_body");
  const summary = useLoad(
    () =>
      api<{ geometric_mean_unit: string; summary: { rows: SummaryRow[] } }>(`${base}/summary?site=${site}`),
    [base, site],
  );
  const rows = summary.data?.summary.rows ?? [];
  const arms = [...new Set(rows.map((r) => r.arm))];
  const days = [...new Set(rows.map((r) => r.day))].sort((a, b) => a - b);
  const at = new Map(rows.map((r) => [`${r.arm}|${r.day}`, r]));
  return (
    <section class="card">
      <h2>Arms by day</h2>
      <label class="field inline">
        <span class="field-label">Site</span>
        <select value={site} onChange={(e) => setSite((e.target as HTMLSelectElement).value)} aria-label="Summary site">
          {SITES.filter((x) => x !== "custom").map((x) => (
            <option value={x}>{siteLabel(x)}</option>
          ))}
        </select>
      </label>
      <ErrorBox error={summary.error} />
      {!summary.data ? (
        <Loading what="the summary" />
      ) : rows.length === 0 ? (
        <p class="muted">No measurement at this site yet.</p>
      ) : (
        <table class="list compact" data-testid="summary">
          <thead>
            <tr>
              <th>Day</th>
              {arms.map((a) => (
                <th title={`geometric mean [95 % CI] (n animals), ${summary.data!.geometric_mean_unit}`}>{a}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {days.map((d) => (
              <tr>
                <td>{d}</td>
                {arms.map((a) => {
                  const r = at.get(`${a}|${d}`);
                  return (
                    <td class="num">
                      {r ? `${formatSci(r.geometric_mean)} [${formatSci(r.geometric_ci_low)}, ${formatSci(r.geometric_ci_high)}] (${r.n})` : ""}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="hint">Geometric mean [95 % CI] (n) per arm and imaging day, in {summary.data?.geometric_mean_unit ?? "p/s"}.</p>
    </section>
  );
}
