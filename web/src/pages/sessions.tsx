import { useRef, useState } from "preact/hooks";
import { all, allLinked, api, request } from "../lib/api";
import { formatSci } from "../lib/colour";
import { type Job, followJob, jobLine } from "../lib/jobs";
import { type UploadProgress, uploadWithRetry } from "../lib/upload";
import { type FolderFile, clickFolders, zipClick } from "../lib/zip";
import type { Acquisition, ImagingSession, Study } from "../types";
import { ErrorBox, Field, Loading, fmtDate, formValues, useLoad } from "../ui";

interface SessionWithAcqs extends ImagingSession {
  acquisitions: Acquisition[];
}

export function SessionsPage({ study }: { study: Study }) {
  const base = `/studies/${study.id}/sessions`;
  const sessions = useLoad(async () => {
    const list = await all<ImagingSession>(base);
    return Promise.all(
      list.map(async (s) => ({ ...s, acquisitions: await allLinked<Acquisition>(`${base}/${s.id}/acquisitions`) })),
    );
  }, [study.id]);
  return (
    <div>
      <Uploader study={study} sessions={sessions.data ?? []} onUploaded={sessions.reload} />
      <h2>Sessions</h2>
      <ErrorBox error={sessions.error} />
      {!sessions.data ? (
        <Loading what="sessions" />
      ) : sessions.data.length === 0 ? (
        <p class="muted">No imaging session yet: open one above and drop its clicks.</p>
      ) : (
        <table class="list" data-testid="sessions">
          <thead>
            <tr>
              <th>Day</th>
              <th>Acquired</th>
              <th>Operator</th>
              <th>Acquisitions</th>
              <th>Measure again</th>
            </tr>
          </thead>
          <tbody>
            {[...sessions.data].reverse().map((s: SessionWithAcqs) => (
              <tr key={s.id}>
                <td>{s.day}</td>
                <td>{fmtDate(s.acquired_at)}</td>
                <td>{s.operator ?? ""}</td>
                <td>
                  {s.acquisitions.map((a) => (
                    <a class="chip" href={`#/s/${study.id}/a/${s.id}/${a.id}`} title={a.animals.map((x) => x.identifier).join(", ")}>
                      {a.click_number ?? a.id.slice(0, 8)} · {a.view}
                    </a>
                  ))}
                </td>
                <td>
                  <Requantify studyId={study.id} sessionId={s.id} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** Measure a session's images again from their raw files: a job (202), followed to its end
 * with its progress (images done of all). */
function Requantify({ studyId, sessionId }: { studyId: string; sessionId: string }) {
  const [line, setLine] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function start() {
    setBusy(true);
    try {
      const response = await request(`/studies/${studyId}/requantify?session_id=${sessionId}`, { method: "POST" });
      const location = response.headers.get("Location") ?? `/jobs/${((await response.json()) as Job).id}`;
      await followJob(location, (job) => setLine(jobLine(job)), (path) => api<Job>(path));
    } catch (e) {
      setLine(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <span>
      <button type="button" disabled={busy} onClick={start} data-testid="requantify" title="Calibrate and quantify every current ROI of this session again from the raw files (the previous values stay as history)">
        Measure again
      </button>{" "}
      {line && (
        <span class="muted" data-testid="requantify-progress">
          {line}
        </span>
      )}
    </span>
  );
}

interface Item {
  file: File;
  sessionId: string;
  progress: UploadProgress;
  result?: Acquisition;
  error?: string;
  replayed?: boolean;
}

function Uploader({ study, sessions, onUploaded }: { study: Study; sessions: ImagingSession[]; onUploaded: () => void }) {
  const [sessionId, setSessionId] = useState<string>("");
  const [items, setItems] = useState<Item[]>([]);
  const itemsRef = useRef<Item[]>([]);
  const [error, setError] = useState<unknown>();
  const [over, setOver] = useState(false);
  const chosen = sessionId || sessions[sessions.length - 1]?.id || "";

  async function openSession(e: Event) {
    e.preventDefault();
    const v = formValues(e.target as HTMLFormElement);
    setError(undefined);
    try {
      // the instrument's local time with this browser's UTC offset (the day is its local date)
      const local = new Date(v.acquired_at);
      const off = -local.getTimezoneOffset();
      const sign = off >= 0 ? "+" : "-";
      const hh = String(Math.floor(Math.abs(off) / 60)).padStart(2, "0");
      const mm = String(Math.abs(off) % 60).padStart(2, "0");
      const body: Record<string, unknown> = { acquired_at: `${v.acquired_at}:00${sign}${hh}:${mm}` };
      if (v.operator) body.operator = v.operator;
      if (v.instrument) body.instrument = v.instrument;
      if (v.luciferin) body.luciferin_dose_mg_per_kg = Number(v.luciferin);
      const s = await api<ImagingSession>(`/studies/${study.id}/sessions`, { json: body });
      setSessionId(s.id);
      onUploaded();
    } catch (err) {
      setError(err);
    }
  }

  async function addFiles(files: File[]) {
    if (!chosen) {
      setError(new Error("Open an imaging session first."));
      return;
    }
    const zips = files.filter((f) => /\.zip$/i.test(f.name));
    // one list for every batch in flight (two drops may overlap), re-rendered on each change
    const all = itemsRef.current;
    const start = all.length;
    all.push(
      ...zips.map((file) => ({ file, sessionId: chosen, progress: { phase: "uploading", sent: 0, total: file.size, attempt: 1 } as UploadProgress })),
    );
    setItems([...all]);
    const update = (i: number, patch: Partial<Item>) => {
      all[i] = { ...all[i], ...patch };
      setItems([...all]);
    };
    // two at a time: the server serialises each study's writes anyway
    let cursor = 0;
    const worker = async () => {
      while (cursor < zips.length) {
        const k = cursor++;
        const i = start + k;
        const url = `/studies/${study.id}/sessions/${chosen}/acquisitions`;
        const res = await uploadWithRetry(url, zips[k], {}, (p) => update(i, { progress: p }));
        if (res.status >= 200 && res.status < 300) update(i, { result: res.body as Acquisition, replayed: res.status === 200 });
        else {
          const b = res.body as { detail?: string; title?: string } | string;
          update(i, { error: typeof b === "string" ? b : `${res.status} ${b.title ?? ""}: ${b.detail ?? ""}` });
        }
      }
    };
    await Promise.all([worker(), worker()]);
    onUploaded();
  }

  // click folders (dropped, or chosen with the folder picker) are zipped here, one per click
  async function addFolders(files: FolderFile[]) {
    const groups = clickFolders(files);
    if (groups.size === 0) {
      setError(new Error("No click folder found (a folder with a ClickInfo.txt)."));
      return;
    }
    const zips = await Promise.all([...groups].map(([dir, fs]) => zipClick(dir, fs)));
    await addFiles(zips);
  }

  async function onDrop(e: DragEvent) {
    e.preventDefault();
    setOver(false);
    const items = [...(e.dataTransfer?.items ?? [])];
    const entries = items.map((i) => i.webkitGetAsEntry?.()).filter((x): x is FileSystemEntry => !!x);
    if (entries.some((x) => x.isDirectory)) {
      const files: FolderFile[] = [];
      await Promise.all(entries.map((x) => walk(x, files)));
      const zipsDropped = files.filter((f) => /\.zip$/i.test(f.path)).map((f) => f.file as File);
      await addFolders(files.filter((f) => !/\.zip$/i.test(f.path)));
      if (zipsDropped.length) await addFiles(zipsDropped);
    } else addFiles([...(e.dataTransfer?.files ?? [])]);
  }

  return (
    <section class="card">
      <h2>Image a session</h2>
      <div class="two">
        <div>
          <Field label="Session">
            <select value={chosen} onChange={(e) => setSessionId((e.target as HTMLSelectElement).value)} aria-label="Session">
              {sessions.length === 0 && <option value="">— open one →</option>}
              {sessions.map((s) => (
                <option value={s.id}>
                  day {s.day} · {fmtDate(s.acquired_at)}
                </option>
              ))}
            </select>
          </Field>
          <div
            class={`drop ${over ? "over" : ""}`}
            onDragOver={(e) => {
              e.preventDefault();
              setOver(true);
            }}
            onDragLeave={() => setOver(false)}
            onDrop={onDrop}
          >
            <p>
              Drop Living Image clicks here — click folders or zips, many at once — or{" "}
              <label class="filelabel">
                choose files
                <input
                  type="file"
                  accept=".zip,application/zip"
                  multiple
                  aria-label="Click zips"
                  onChange={(e) => addFiles([...((e.target as HTMLInputElement).files ?? [])])}
                />
              </label>
              , or{" "}
              <label class="filelabel">
                choose click folders
                <input
                  type="file"
                  multiple
                  // @ts-expect-error: a non-standard attribute every browser supports
                  webkitdirectory={true}
                  aria-label="Click folders"
                  onChange={(e) =>
                    addFolders(
                      [...((e.target as HTMLInputElement).files ?? [])].map((f) => ({ path: f.webkitRelativePath || f.name, file: f })),
                    )
                  }
                />
              </label>
              .
            </p>
            <p class="hint">
              Each upload carries an Idempotency-Key: after a network cut it is retried and never stored twice.
            </p>
          </div>
        </div>
        <form onSubmit={openSession} class="grid" aria-label="Open a session">
          <h3>Open a new session</h3>
          <Field label="Imaging started (instrument clock)">
            <input name="acquired_at" type="datetime-local" required />
          </Field>
          <Field label="Operator">
            <input name="operator" />
          </Field>
          <Field label="Instrument">
            <input name="instrument" placeholder="IVIS Spectrum" />
          </Field>
          <Field label="D-luciferin (mg/kg)">
            <input name="luciferin" type="number" step="any" min="0" placeholder="150" />
          </Field>
          <div class="actions">
            <button type="submit">Open session</button>
          </div>
        </form>
      </div>
      <ErrorBox error={error} />
      {items.length > 0 && (
        <div class="uploads" data-testid="uploads">
          {items.map((it) => (
            <UploadCard item={it} studyId={study.id} />
          ))}
        </div>
      )}
    </section>
  );
}

function UploadCard({ item, studyId }: { item: Item; studyId: string }) {
  const { progress: p, result, error, sessionId } = item;
  const pct = p.total ? Math.round((100 * p.sent) / p.total) : 0;
  const phase = result ? "stored" : error ? "failed" : p.phase === "processing" ? "processing (calibrating, finding mice)…" : p.phase === "retrying" ? `network problem, ${p.message}` : `uploading ${pct} %`;
  return (
    <div class={`upload ${result ? "ok" : error ? "bad" : ""}`} data-testid="upload-card">
      <div class="upload-head">
        <strong>{item.file.name}</strong> <span class="muted">{(item.file.size / 1e6).toFixed(1)} MB</span>
        <span class="spacer" />
        <span class="phase">{phase}</span>
      </div>
      {!result && !error && <progress max={100} value={p.phase === "processing" ? undefined : pct} />}
      {error && <div class="error">{error}</div>}
      {result && (
        <div class="review">
          <a href={`#/s/${studyId}/a/${sessionId}/${result.id}`}>
            Review {result.click_number} ({result.view})
          </a>
          {item.replayed || result.already_stored ? <span class="muted"> — already stored, nothing changed</span> : null}
          <table class="list compact">
            <tbody>
              {result.animals.map((a) => {
                // the whole-body flux when there is one, else each of the mouse's ROIs
                const mine = result.measurements.filter((x) => x.animal === a.identifier);
                const whole = mine.filter((x) => x.site === "whole_body");
                return (
                  <tr>
                    <td>mouse {a.position + 1}</td>
                    <td>{a.identifier}</td>
                    <td>
                      {(whole.length ? whole : mine)
                        .map((m) => `${formatSci(m.total_flux_ps)} p/s ${m.label ?? m.site.replace(/_/g, " ")}`)
                        .join(" · ")}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

/** Every file under a dropped folder, with its path from the drop. */
async function walk(entry: FileSystemEntry, out: FolderFile[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail));
    out.push({ path: entry.fullPath.replace(/^\//, ""), file });
    return;
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
    if (batch.length === 0) return;
    await Promise.all(batch.map((e) => walk(e, out)));
  }
}
