import { useState } from "preact/hooks";
import { api, download } from "../lib/api";
import type { Study } from "../types";
import { ErrorBox, Loading, fmtDate, useLoad } from "../ui";

interface AuditEvent {
  id: string;
  at: string;
  api_key_name: string | null;
  action: string;
  object_type: string;
  object_id: string;
  changes: Record<string, unknown>;
  reason: string | null;
}

const TYPES = ["", "study", "arm", "animal", "imaging_session", "acquisition", "roi", "comparison", "measurement_import"];

function describe(changes: Record<string, unknown>): string {
  return Object.entries(changes)
    .map(([k, v]) => {
      if (Array.isArray(v) && v.length === 2 && k !== "vertices") return `${k}: ${short(v[0])} → ${short(v[1])}`;
      return `${k}: ${short(v)}`;
    })
    .join("; ");
}

function short(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s && s.length > 90 ? `${s.slice(0, 87)}…` : (s ?? "—");
}

/** Who changed what, when and why, for one study: filterable, newest first, as CSV too. */
export function AuditPage({ study }: { study: Study }) {
  const [filters, setFilters] = useState<Record<string, string>>({ order: "desc" });
  const [limit, setLimit] = useState(100);
  const [error, setError] = useState<unknown>();
  const query = new URLSearchParams({ ...Object.fromEntries(Object.entries(filters).filter(([, v]) => v)), limit: String(limit) });
  const path = `/studies/${study.id}/audit`;
  const events = useLoad(() => api<{ items: AuditEvent[]; total: number }>(`${path}?${query}`), [query.toString()]);
  function set(k: string, v: string) {
    setFilters((f) => ({ ...f, [k]: v }));
  }
  return (
    <section>
      <h2>Audit trail</h2>
      <form class="grid" aria-label="Audit filters" onSubmit={(e) => e.preventDefault()}>
        <label class="field">
          <span class="field-label">Object</span>
          <select value={filters.object_type ?? ""} onChange={(e) => set("object_type", (e.target as HTMLSelectElement).value)}>
            {TYPES.map((t) => (
              <option value={t}>{t ? t.replace(/_/g, " ") : "everything"}</option>
            ))}
          </select>
        </label>
        <label class="field">
          <span class="field-label">Action</span>
          <select value={filters.action ?? ""} onChange={(e) => set("action", (e.target as HTMLSelectElement).value)}>
            {["", "create", "update", "retire", "archive", "ingest", "import"].map((t) => (
              <option value={t}>{t || "any"}</option>
            ))}
          </select>
        </label>
        <label class="field">
          <span class="field-label">Since</span>
          <input
            type="date"
            onChange={(e) => {
              const v = (e.target as HTMLInputElement).value;
              set("since", v ? `${v}T00:00:00Z` : "");
            }}
          />
        </label>
        <div class="actions">
          <button
            type="button"
            class="secondary"
            onClick={() => download(`${path}?${query}&format=csv`, `audit-${study.name}.csv`).catch(setError)}
          >
            Download CSV
          </button>
        </div>
      </form>
      <ErrorBox error={events.error ?? error} />
      {!events.data ? (
        <Loading what="the audit trail" />
      ) : (
        <>
          <p class="muted">
            {events.data.total} event{events.data.total === 1 ? "" : "s"}
          </p>
          <table class="list compact" data-testid="audit">
            <thead>
              <tr>
                <th>When (UTC)</th>
                <th>Who (key)</th>
                <th>Action</th>
                <th>Object</th>
                <th>What changed</th>
                <th>Why</th>
              </tr>
            </thead>
            <tbody>
              {events.data.items.map((e) => (
                <tr key={e.id}>
                  <td class="nowrap">{fmtDate(e.at)}</td>
                  <td>{e.api_key_name ?? "server"}</td>
                  <td>{e.action}</td>
                  <td title={e.object_id}>{e.object_type.replace(/_/g, " ")}</td>
                  <td class="changes">{describe(e.changes)}</td>
                  <td>{e.reason ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {events.data.total > events.data.items.length && (
            <button class="secondary" onClick={() => setLimit((l) => Math.min(500, l + 200))}>
              Show more
            </button>
          )}
        </>
      )}
    </section>
  );
}
