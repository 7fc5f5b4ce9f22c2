/**
 * A click folder dropped or chosen in the browser, zipped for upload (the API takes one zip
 * per click). Files are stored uncompressed (method 0): TIFFs barely compress and the
 * loopback/lab network is fast, so this stays simple and quick. Format: PKWARE APPNOTE 6.3.
 */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC, as zip and gzip use). */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface ZipEntry {
  path: string;
  data: Uint8Array;
}

/** A zip archive of the entries (stored, no compression, UTF-8 names). */
export function zip(entries: ZipEntry[]): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.path);
    const crc = crc32(e.data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true); // version needed
    local.setUint16(6, 0x0800, true); // UTF-8 names
    local.setUint16(8, 0, true); // stored
    local.setUint16(10, 0, true); // time
    local.setUint16(12, 0x21, true); // date: 1980-01-01
    local.setUint32(14, crc, true);
    local.setUint32(18, e.data.length, true);
    local.setUint32(22, e.data.length, true);
    local.setUint16(26, name.length, true);
    local.setUint16(28, 0, true);
    const central = new DataView(new ArrayBuffer(46));
    central.setUint32(0, 0x02014b50, true);
    central.setUint16(4, 20, true);
    central.setUint16(6, 20, true);
    central.setUint16(8, 0x0800, true);
    central.setUint16(10, 0, true);
    central.setUint16(12, 0, true);
    central.setUint16(14, 0x21, true);
    central.setUint32(16, crc, true);
    central.setUint32(20, e.data.length, true);
    central.setUint32(24, e.data.length, true);
    central.setUint16(28, name.length, true);
    central.setUint32(42, offset, true);
    locals.push(new Uint8Array(local.buffer), name, e.data);
    centrals.push(new Uint8Array(central.buffer), name);
    offset += 30 + name.length + e.data.length;
  }
  const centralSize = centrals.reduce((s, b) => s + b.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, centralSize, true);
  end.setUint32(16, offset, true);
  const parts = [...locals, ...centrals, new Uint8Array(end.buffer)];
  const out = new Uint8Array(parts.reduce((s, b) => s + b.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface FolderFile {
  /** Path relative to what was dropped or chosen, e.g. "session/DG2022…/ClickInfo.txt". */
  path: string;
  file: Blob;
}

/**
 * Group files into clicks: every folder that holds a ClickInfo.txt is one click (its own
 * files, not those of subfolders), named after the folder.
 */
export function clickFolders(files: FolderFile[]): Map<string, FolderFile[]> {
  const dirOf = (p: string) => p.slice(0, Math.max(0, p.lastIndexOf("/")));
  const clickDirs = new Set(files.filter((f) => /(^|\/)ClickInfo\.txt$/i.test(f.path)).map((f) => dirOf(f.path)));
  const out = new Map<string, FolderFile[]>();
  for (const f of files) {
    const d = dirOf(f.path);
    if (clickDirs.has(d)) out.set(d, [...(out.get(d) ?? []), f]);
  }
  return out;
}

/** One click folder as a zip File named after the folder ("DG20220105114235.zip"). */
export async function zipClick(dir: string, files: FolderFile[]): Promise<File> {
  const name = dir.split("/").pop() || "click";
  const entries = await Promise.all(
    files.map(async (f) => ({ path: `${name}/${f.path.split("/").pop()}`, data: new Uint8Array(await f.file.arrayBuffer()) })),
  );
  entries.sort((a, b) => a.path.localeCompare(b.path));
  return new File([zip(entries)], `${name}.zip`, { type: "application/zip" });
}
