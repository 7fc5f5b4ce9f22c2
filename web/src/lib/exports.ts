/**
 * Study exports (`POST /studies/{id}/exports`, a job building one ZIP; `GET …/exports`, the
 * study's earlier ones; `DELETE …/exports/{job_id}` with a reason): what the export panel
 * sends and how it words where an export stands.
 */
import type { Job } from "./jobs";

export interface ExportZip {
  filename: string;
  sha256: string;
  size_bytes: number;
  files: number;
}

/** One export as `GET /studies/{id}/exports` lists it. */
export interface StudyExport {
  id: string;
  state: Job["state"];
  progress: Job["progress"];
  options: { sites?: string[] | null; overlays?: boolean; comparisons?: boolean };
  created_at: string;
  finished_at: string | null;
  zip: ExportZip | null;
  download_url: string | null;
  error: Job["error"];
}

/** The request body: the sites ticked (none: every site the study has measurements of, so
 * `sites` is left out) and whether to add the overlays. */
export function exportBody(sites: readonly string[], overlays: boolean): { sites?: string[]; overlays: boolean } {
  const chosen = [...new Set(sites)];
  return chosen.length ? { sites: chosen, overlays } : { overlays };
}

/** One line saying where an export job stands: files made of all (the ZIP counts as one). */
export function exportLine(job: Pick<Job, "state" | "progress" | "error" | "attempts">): string {
  const { done, total } = job.progress;
  if (job.state === "failed") return `Failed: ${job.error?.detail ?? job.error?.title ?? "unknown error"}`;
  if (job.state === "succeeded") return `Done: ${total ?? done} file(s)`;
  if (job.state === "queued") return job.attempts > 0 ? "Waiting to be retried…" : "Waiting for a worker…";
  if (total === null) return "Planning the files…";
  return `Exporting: ${done} of ${total} file(s)`;
}

/** The options of an export in a few words. */
export function optionsLine(options: StudyExport["options"]): string {
  const sites = options.sites?.length ? options.sites.map((s) => s.replace(/_/g, " ")).join(", ") : "every site";
  const parts = [sites, options.comparisons === false ? "no comparisons" : "comparisons"];
  parts.push(options.overlays ? "overlays" : "no overlays");
  return parts.join(" · ");
}

/** A size in bytes as people read it (1000-based, as file managers show). */
export function fileSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** The `X-Change-Reason` header for a reason typed by a person (a header value is ASCII), or
 * null when there is no reason worth keeping (empty, or fewer than 3 characters). */
export function reasonHeader(reason: string | null): { "X-Change-Reason": string } | null {
  const why = (reason ?? "").trim().replace(/[^\x20-\x7e]/g, "?");
  return why.length >= 3 ? { "X-Change-Reason": why } : null;
}
