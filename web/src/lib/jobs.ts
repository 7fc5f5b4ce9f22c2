/**
 * Jobs (`GET /jobs/{id}`): heavy work such as requantification answers 202 with
 * `Location: /jobs/{id}`; the workspace follows it and shows its progress n/N.
 */

export type JobState = "queued" | "running" | "succeeded" | "failed";

export interface Job {
  id: string;
  kind: string;
  state: JobState;
  progress: { done: number; total: number | null };
  result: Record<string, unknown> | null;
  result_url: string | null;
  error: { title?: string; detail?: string; status?: number } | null;
  attempts: number;
}

export function finished(job: Job): boolean {
  return job.state === "succeeded" || job.state === "failed";
}

/** One line saying where a requantification job stands. */
export function jobLine(job: Job): string {
  const { done, total } = job.progress;
  if (job.state === "failed") return `Failed: ${job.error?.detail ?? job.error?.title ?? "unknown error"}`;
  if (job.state === "succeeded") {
    const r = (job.result ?? {}) as { acquisitions?: number; measurements?: number; changed?: number };
    if (r.acquisitions === undefined) return "Done";
    return `Done: ${r.acquisitions} image(s), ${r.measurements} measurement(s) again, ${r.changed} changed`;
  }
  if (job.state === "queued" || total === null) {
    return job.attempts > 0 ? "Waiting to be retried…" : "Waiting for a worker…";
  }
  return `Measuring again: ${done} of ${total} image(s)`;
}

/** Poll a job until it has finished, reporting each state; the last one is returned. */
export async function followJob(
  location: string,
  onUpdate: (job: Job) => void,
  fetchJob: (location: string) => Promise<Job>,
  { intervalMs = 500, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) } = {},
): Promise<Job> {
  for (;;) {
    const job = await fetchJob(location);
    onUpdate(job);
    if (finished(job)) return job;
    await sleep(intervalMs);
  }
}
