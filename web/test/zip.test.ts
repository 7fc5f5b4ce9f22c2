import { inflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { clickFolders, crc32, zip } from "../src/lib/zip";

describe("crc32", () => {
  it("matches the standard check values", () => {
    // CRC-32/ISO-HDLC check value of "123456789" is 0xCBF43926 (the CRC catalogue)
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new TextEncoder().encode("The quick brown fox jumps over the lazy dog"))).toBe(0x414fa339);
  });
});

describe("zip", () => {
  it("writes stored entries a reader finds through the central directory", () => {
    const a = new TextEncoder().encode("Click info\n");
    const b = new Uint8Array([0, 1, 2, 255]);
    const z = zip([
      { path: "DG1/ClickInfo.txt", data: a },
      { path: "DG1/luminescent.TIF", data: b },
    ]);
    const v = new DataView(z.buffer);
    // end of central directory: 2 entries, directory at its stated offset
    const end = z.length - 22;
    expect(v.getUint32(end, true)).toBe(0x06054b50);
    expect(v.getUint16(end + 10, true)).toBe(2);
    let at = v.getUint32(end + 16, true);
    const names: string[] = [];
    for (let i = 0; i < 2; i++) {
      expect(v.getUint32(at, true)).toBe(0x02014b50);
      const n = v.getUint16(at + 28, true);
      const local = v.getUint32(at + 42, true);
      const size = v.getUint32(at + 24, true);
      names.push(new TextDecoder().decode(z.slice(at + 46, at + 46 + n)));
      // the local header points at the same bytes; stored data is the data itself, which
      // a raw-deflate reader also accepts once framed as a stored block
      const data = z.slice(local + 30 + v.getUint16(local + 26, true), local + 30 + v.getUint16(local + 26, true) + size);
      expect(crc32(data)).toBe(v.getUint32(at + 16, true));
      const framed = new Uint8Array([1, size & 0xff, size >> 8, ~size & 0xff, (~size >> 8) & 0xff, ...data]);
      expect([...inflateRawSync(framed)]).toEqual([...(i === 0 ? a : b)]);
      at += 46 + n;
    }
    expect(names).toEqual(["DG1/ClickInfo.txt", "DG1/luminescent.TIF"]);
  });
});

describe("clickFolders", () => {
  it("finds every folder with a ClickInfo.txt, each with its own files only", () => {
    const f = (path: string) => ({ path, file: new Blob([path]) });
    const groups = clickFolders([
      f("day14/DG1/ClickInfo.txt"),
      f("day14/DG1/photograph.TIF"),
      f("day14/DG2/ClickInfo.txt"),
      f("day14/notes.txt"),
      f("day14/DG2/sub/other.txt"),
    ]);
    expect([...groups.keys()]).toEqual(["day14/DG1", "day14/DG2"]);
    expect(groups.get("day14/DG1")!.map((x) => x.path)).toEqual(["day14/DG1/ClickInfo.txt", "day14/DG1/photograph.TIF"]);
    expect(groups.get("day14/DG2")!.length).toBe(1);
  });
});
