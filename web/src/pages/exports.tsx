import { useState } from "preact/hooks";
import { all, api, download, request } from "../lib/api";
import { type StudyExport, exportBody, exportLine, fileSize, optionsLine, reasonHeader } from "../lib/exports";
import { type Job, followJob } from "../lib/jobs";
import { SITES, type Study, siteLabel } from "../types";
import { ErrorBox, fmtDate, useLoad } from "../ui";

/**
 * "Export study": one ZIP of the study (measurements, per-arm summaries, Prism tables, stored
 * comparisons, overlays if asked, the audit trail, MANIFEST.json) built as a job whose
 * progress (files done of all) is shown until its download is offered; below, the study's
 * earlier exports, each to download or delete (with a reason, kept in the audit trail).
 */
export function ExportPanel({ study, canWrite }: { study: Study; canWrite: boolean }) {
  const [open, setOpen] = useState(false);
  return (
    <details class="card exports" data-testid="exports" onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>Export study…</summary>
      {!canWrite ? (
        <p class="muted">Exports hold the study's audit trail: editors and admins make and download them.</p>
      ) : (
        open && <Exports study={study} />
      )}
    </details>
  );
}

function Exports({ study }: { study: Study }) {
  const base = `/studies/${study.id}/exports`;
  const list = useLoad(() => all<StudyExport>(base), [base]);
  const [sites, setSites] = useState<string[]>([]);
  const [overlays, setOverlays] = useState(false);
  const [line, setLine] = useState<string | null>(null);
  const [made, setMade] = useState<Job | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();

  async function start(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setMade(null);
    try {
      const response = await request(base, { json: exportBody(sites, overlays) });
      const location = response.headers.get("Location") ?? `/jobs/${((await response.json()) as Job).id}`;
      const job = await followJob(location, (j) => setLine(exportLine(j)), (path) => api<Job>(path));
      setMade(job);
      list.reload();
    } catch (err) {
      setLine(null);
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  async function remove(item: StudyExport) {
    const headers = reasonHeader(prompt("Why delete this export? (kept in the audit trail)", "") ?? "");
    if (!headers) return;
    setError(undefined);
    try {
      await api(`${base}/${item.id}`, { method: "DELETE", headers });
      if (made?.id === item.id) setMade(null);
      list.reload();
    } catch (err) {
      setError(err);
    }
  }

  const save = (item: { download_url: string | null; zip: { filename: string } | null }) =>
    item.download_url && download(item.download_url, item.zip?.filename ?? "export.zip").catch(setError);
  const built = made && list.data?.find((x) => x.id === made.id && x.zip);

  return (
    <div>
      <form onSubmit={start} class="export-form">
        <fieldset>
          <legend>Sites (none ticked: every site with measurements)</legend>
          {SITES.filter((s) => s !== "custom").map((s) => (
            <label class="check">
              <input
                type="checkbox"
                name="sites"
                value={s}
                checked={sites.includes(s)}
                onChange={(e) => {
                  const on = (e.target as HTMLInputElement).checked;
                  setSites((now) => (on ? [...now, s] : now.filter((x) => x !== s)));
                }}
              />{" "}
              {siteLabel(s)}
            </label>
          ))}
        </fieldset>
        <label class="check">
          <input type="checkbox" name="overlays" checked={overlays} onChange={(e) => setOverlays((e.target as HTMLInputElement).checked)} /> Overlays
          (one PNG per image, all on one study-wide colour range)
        </label>
        <div class="actions">
          <button type="submit" disabled={busy} data-testid="export-start">
            {busy ? "Exporting…" : "Export study"}
          </button>
          {line && (
            <span class="muted" data-testid="export-progress">
              {line}
            </span>
          )}
          {built && (
            <button type="button" class="secondary" data-testid="export-download" onClick={() => save(built)}>
              Download {built.zip!.filename} ({fileSize(built.zip!.size_bytes)})
            </button>
          )}
        </div>
      </form>
      <ErrorBox error={error ?? list.error} />
      <h3>Earlier exports</h3>
      {list.data && list.data.length === 0 && <p class="muted">None yet.</p>}
      {list.data && list.data.length > 0 && (
        <table class="list" data-testid="export-list">
          <thead>
            <tr>
              <th>Made</th>
              <th>What</th>
              <th>State</th>
              <th>ZIP</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.data.map((item) => (
              <tr key={item.id} data-export={item.id}>
                <td>{fmtDate(item.created_at)}</td>
                <td>{optionsLine(item.options)}</td>
                <td>{exportLine({ ...item, attempts: 0 })}</td>
                <td>
                  {item.zip ? (
                    <span title={`SHA-256 ${item.zip.sha256}`}>
                      {fileSize(item.zip.size_bytes)} · {item.zip.files} files · <code>{item.zip.sha256.slice(0, 12)}</code>
                    </span>
                  ) : (
                    ""
                  )}
                </td>
                <td>
                  <div class="actions">
                  {item.download_url && (
                    <button type="button" class="secondary" onClick={() => save(item)}>
                      Download
                    </button>
                  )}
                  {item.state !== "queued" && item.state !== "running" && (
                    <button type="button" class="secondary" data-testid="export-delete" onClick={() => remove(item)}>
                      Delete…
                    </button>
                  )}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
