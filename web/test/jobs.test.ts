import { describe, expect, it } from "vitest";
import { type Job, followJob, jobLine } from "../src/lib/jobs";

function job(state: Job["state"], done: number, total: number | null, extra: Partial<Job> = {}): Job {
  return { id: "j", kind: "requantify", state, progress: { done, total }, result: null, result_url: null, error: null, attempts: 1, ...extra };
}

describe("jobs", () => {
  it("says where a requantification stands", () => {
    expect(jobLine(job("queued", 0, null, { attempts: 0 }))).toBe("Waiting for a worker…");
    expect(jobLine(job("queued", 2, 5))).toBe("Waiting to be retried…");
    expect(jobLine(job("running", 3, 12))).toBe("Measuring again: 3 of 12 image(s)");
    expect(jobLine(job("succeeded", 2, 2, { result: { acquisitions: 2, measurements: 14, changed: 1 } }))).toBe(
      "Done: 2 image(s), 14 measurement(s) again, 1 changed",
    );
    expect(jobLine(job("failed", 1, 2, { error: { detail: "Click 7: its raw file is missing" } }))).toBe(
      "Failed: Click 7: its raw file is missing",
    );
  });
  it("polls until the job has finished, reporting every state", async () => {
    const answers = [job("queued", 0, null), job("running", 1, 2), job("succeeded", 2, 2)];
    const seen: string[] = [];
    const waits: number[] = [];
    const last = await followJob(
      "/jobs/j",
      (j) => seen.push(`${j.state} ${j.progress.done}`),
      async (location) => {
        expect(location).toBe("/jobs/j");
        return answers.shift()!;
      },
      { intervalMs: 250, sleep: async (ms) => void waits.push(ms) },
    );
    expect(seen).toEqual(["queued 0", "running 1", "succeeded 2"]);
    expect(waits).toEqual([250, 250]);
    expect(last.state).toBe("succeeded");
  });
});
