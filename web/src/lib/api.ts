/**
 * The public REST API, called with the API key from sessionStorage (never from a URL).
 * Errors are RFC 9457 problem+json; `ApiError` carries the server's `detail`.
 */

const KEY = "osteolux.apiKey";

export function getKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

export function clearKey(): void {
  sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public title: string,
    public detail: string,
    public body: unknown,
  ) {
    super(detail || title || `HTTP ${status}`);
  }
}

export function authHeaders(key = getKey()): Record<string, string> {
  return key ? { "X-API-Key": key } : {};
}

async function problem(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  const b = (body ?? {}) as { title?: string; detail?: unknown; errors?: unknown };
  let detail = typeof b.detail === "string" ? b.detail : "";
  if (!detail && Array.isArray(b.detail)) detail = JSON.stringify(b.detail);
  if (Array.isArray(b.errors)) {
    const parts = (b.errors as { loc?: unknown[]; msg?: string }[]).map(
      (e) => `${(e.loc ?? []).slice(1).join(".")}: ${e.msg ?? ""}`,
    );
    if (parts.length) detail = `${detail} ${parts.join("; ")}`.trim();
  }
  return new ApiError(response.status, b.title ?? response.statusText, detail, body);
}

export interface RequestOptions {
  method?: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...authHeaders(), ...(options.headers ?? {}) };
  let body = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  const response = await fetch(path, {
    method: options.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
    signal: options.signal,
    credentials: "omit",
    cache: "no-store",
  });
  if (response.status === 401 && getKey()) {
    // the key was revoked (or the lab's keys rotated): back to the sign-in page
    clearKey();
    dispatchEvent(new Event("osteolux:signed-out"));
  }
  if (!response.ok) throw await problem(response);
  return response;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await request(path, options);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** Every item of a paginated list (`{items, total, limit, offset}`). */
export async function all<T>(path: string): Promise<T[]> {
  const out: T[] = [];
  const sep = path.includes("?") ? "&" : "?";
  for (let offset = 0; ; ) {
    const page = await api<{ items: T[]; total: number; limit: number }>(`${path}${sep}limit=200&offset=${offset}`);
    out.push(...page.items);
    offset += page.items.length;
    if (page.items.length === 0 || offset >= page.total) return out;
  }
}

/** The target of the `rel="next"` link in a `Link` header, if there is one. */
export function nextLink(header: string | null): string | null {
  for (const [, target, params] of (header ?? "").matchAll(/<([^>]*)>((?:\s*;[^;,]*)*)/g)) {
    if (/;\s*rel\s*=\s*"?(?:[^";]*\s)?next(?:\s[^";]*)?"?\s*(?:;|$)/i.test(params)) return target;
  }
  return null;
}

/**
 * Every item of a list that answers a plain array a page at a time (a session's acquisitions,
 * a study's comparisons, an ROI history): follows `Link: <…>; rel="next"` to the last page.
 */
export async function allLinked<T>(path: string, get: (path: string) => Promise<Response> = request): Promise<T[]> {
  const out: T[] = [];
  const read = new Set<string>();
  for (let next: string | null = path; next !== null; ) {
    if (read.has(next)) throw new Error(`The list at ${path} links back to a page already read: ${next}`);
    read.add(next);
    const response: Response = await get(next);
    out.push(...((await response.json()) as T[]));
    next = nextLink(response.headers.get("Link"));
  }
  return out;
}

/** A protected image or file as a blob: URL (plots and downloads need the key). */
export async function blobUrl(path: string): Promise<string> {
  const response = await request(path);
  return URL.createObjectURL(await response.blob());
}

/** Save a protected file under `filename` (fetched with the key, then a blob: download). */
export async function download(path: string, filename: string): Promise<void> {
  const url = await blobUrl(path);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
