import { describe, expect, it } from "vitest";
import { exportBody, exportLine, fileSize, optionsLine, reasonHeader } from "../src/lib/exports";
import type { Job } from "../src/lib/jobs";

function job(state: Job["state"], done: number, total: number | null, extra: Partial<Job> = {}): Job {
  return { id: "j", kind: "export", state, progress: { done, total }, result: null, result_url: null, error: null, attempts: 1, ...extra };
}

describe("exports", () => {
  it("asks for every site unless sites are ticked, each once", () => {
    expect(exportBody([], false)).toEqual({ overlays: false });
    expect(exportBody(["spine", "whole_body", "spine"], true)).toEqual({ sites: ["spine", "whole_body"], overlays: true });
  });
  it("says where an export stands in files", () => {
    expect(exportLine(job("queued", 0, null, { attempts: 0 }))).toBe("Waiting for a worker…");
    expect(exportLine(job("queued", 3, 9))).toBe("Waiting to be retried…");
    expect(exportLine(job("running", 0, null))).toBe("Planning the files…");
    expect(exportLine(job("running", 4, 9))).toBe("Exporting: 4 of 9 file(s)");
    expect(exportLine(job("succeeded", 9, 9))).toBe("Done: 9 file(s)");
    expect(exportLine(job("failed", 2, 9, { error: { title: "Internal error", detail: "disk full" } }))).toBe("Failed: disk full");
    expect(exportLine(job("failed", 2, 9, { error: { title: "Internal error" } }))).toBe("Failed: Internal error");
  });
  it("words the options", () => {
    expect(optionsLine({ sites: null, overlays: false, comparisons: true })).toBe("every site · comparisons · no overlays");
    expect(optionsLine({ sites: ["whole_body", "left_hindlimb"], overlays: true, comparisons: false })).toBe(
      "whole body, left hindlimb · no comparisons · overlays",
    );
  });
  it("gives sizes as file managers do", () => {
    expect(fileSize(0)).toBe("0 B");
    expect(fileSize(999)).toBe("999 B");
    expect(fileSize(1000)).toBe("1.0 kB");
    expect(fileSize(12_345)).toBe("12 kB");
    expect(fileSize(9_949)).toBe("9.9 kB");
    expect(fileSize(2_500_000)).toBe("2.5 MB");
    expect(fileSize(3e15)).toBe("3000 TB");
  });
  it("sends a reason only when there is one, as ASCII", () => {
    expect(reasonHeader(null)).toBeNull();
    expect(reasonHeader("  ")).toBeNull();
    expect(reasonHeader("no")).toBeNull();
    expect(reasonHeader(" wrong sites ")).toEqual({ "X-Change-Reason": "wrong sites" });
    expect(reasonHeader("Lösung")).toEqual({ "X-Change-Reason": "L?sung" });
  });
});
