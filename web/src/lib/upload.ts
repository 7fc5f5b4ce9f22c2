/**
 * Upload one click zip with progress, retried safely after a network cut: every attempt
 * carries the same `Idempotency-Key`, so the server returns the first result instead of
 * storing the click twice.
 */

import { authHeaders } from "./api";

export interface UploadProgress {
  phase: "uploading" | "processing" | "retrying" | "done" | "failed";
  sent: number;
  total: number;
  attempt: number;
  message?: string;
}

export interface UploadResult {
  status: number;
  body: unknown;
}

/** Delay before retry `attempt` (1, 2, …): 1 s, 2 s, 4 s … capped at 15 s. */
export function backoffMs(attempt: number): number {
  return Math.min(15_000, 1000 * 2 ** (attempt - 1));
}

/** Network errors and 5xx / 409-with-Retry-After are worth retrying; 4xx answers are final. */
export function retryable(status: number, retryAfter: string | null): boolean {
  return status === 0 || status >= 500 || ((status === 409 || status === 429) && retryAfter !== null);
}

function once(
  url: string,
  form: FormData,
  idempotencyKey: string,
  onProgress: (sent: number, total: number) => void,
): Promise<{ status: number; body: unknown; retryAfter: string | null }> {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader("Idempotency-Key", idempotencyKey);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total);
    xhr.onload = () => {
      let body: unknown = xhr.responseText;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // keep the text
      }
      resolve({ status: xhr.status, body, retryAfter: xhr.getResponseHeader("Retry-After") });
    };
    xhr.onerror = () => resolve({ status: 0, body: "network error", retryAfter: null });
    xhr.ontimeout = xhr.onerror;
    xhr.send(form);
  });
}

export async function uploadWithRetry(
  url: string,
  file: File,
  fields: Record<string, string>,
  onProgress: (p: UploadProgress) => void,
  { maxAttempts = 6, idempotencyKey = crypto.randomUUID(), sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)) } = {},
): Promise<UploadResult> {
  const form = new FormData();
  form.append("file", file, file.name);
  for (const [k, v] of Object.entries(fields)) if (v) form.append(k, v);
  for (let attempt = 1; ; attempt++) {
    const result = await once(url, form, idempotencyKey, (sent, total) =>
      onProgress({ phase: sent < total ? "uploading" : "processing", sent, total, attempt }),
    );
    if (result.status >= 200 && result.status < 300) {
      onProgress({ phase: "done", sent: file.size, total: file.size, attempt });
      return result;
    }
    if (attempt >= maxAttempts || !retryable(result.status, result.retryAfter)) {
      onProgress({ phase: "failed", sent: 0, total: file.size, attempt });
      return result;
    }
    const wait = result.retryAfter ? Number(result.retryAfter) * 1000 || backoffMs(attempt) : backoffMs(attempt);
    onProgress({ phase: "retrying", sent: 0, total: file.size, attempt, message: `retry in ${Math.round(wait / 1000)} s` });
    await sleep(wait);
  }
}
