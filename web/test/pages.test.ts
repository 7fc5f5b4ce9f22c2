import { describe, expect, it } from "vitest";
import { allLinked, nextLink } from "../src/lib/api";

const session = "/studies/s/sessions/x/acquisitions";

/** A server holding `n` acquisitions that answers `limit` at a time, as osteolux does. */
function server(n: number, limit: number) {
  const asked: string[] = [];
  const get = async (path: string): Promise<Response> => {
    asked.push(path);
    const url = new URL(path, "http://osteolux.test");
    const offset = Number(url.searchParams.get("offset") ?? 0);
    const size = Number(url.searchParams.get("limit") ?? limit);
    const items = Array.from({ length: Math.max(0, Math.min(size, n - offset)) }, (_, i) => ({ id: `a${offset + i}` }));
    const headers = new Headers({ "Content-Type": "application/json", "X-Total-Count": String(n) });
    if (offset + items.length < n) headers.set("Link", `<${url.pathname}?limit=${size}&offset=${offset + items.length}>; rel="next"`);
    return new Response(JSON.stringify(items), { headers });
  };
  return { asked, get };
}

describe("lists answered a page at a time", () => {
  it("loads every acquisition of a session of three pages", async () => {
    const { asked, get } = server(1203, 500);
    const acquisitions = await allLinked<{ id: string }>(session, get);
    expect(acquisitions.map((a) => a.id)).toEqual(Array.from({ length: 1203 }, (_, i) => `a${i}`));
    expect(asked).toEqual([session, `${session}?limit=500&offset=500`, `${session}?limit=500&offset=1000`]);
  });
  it("reads a list of one page once", async () => {
    const { asked, get } = server(3, 500);
    expect(await allLinked<{ id: string }>(session, get)).toHaveLength(3);
    expect(asked).toEqual([session]);
  });
  it("refuses a next link back to a page already read", async () => {
    const get = async () => new Response("[]", { headers: { Link: `<${session}>; rel="next"` } });
    await expect(allLinked(session, get)).rejects.toThrow("already read");
  });
  it("finds the next page among other links", () => {
    expect(nextLink(null)).toBeNull();
    expect(nextLink('</a?offset=0>; rel="prev"')).toBeNull();
    expect(nextLink('</a?offset=0>; rel="prev", </a?limit=2&offset=4>; rel="next"')).toBe("/a?limit=2&offset=4");
    expect(nextLink("</b>; title=\"x\"; rel=next")).toBe("/b");
    expect(nextLink('</c>; rel="last next"')).toBe("/c");
    expect(nextLink('</d>; rel="nextpage"')).toBeNull();
  });
});
