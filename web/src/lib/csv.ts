/**
 * Roster CSV: one animal per row, read in the browser and sent as one POST per animal.
 *
 * Columns (header names are matched loosely, case and spaces ignored): ear tag (or
 * identifier / animal / id), arm (the arm's name), cage, sex, strain, date of birth (dob).
 */

/** RFC 4180 fields: quoted fields may hold commas, quotes ("") and newlines. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  const src = text.replace(/^\uFEFF/, "");
  const sep = detectSeparator(src);
  for (let i = 0; i < src.length; i++) {
    const ch = src[i];
    if (quoted) {
      if (ch === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === "") quoted = true;
    else if (ch === sep) {
      row.push(field);
      field = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && src[i + 1] === "\n") i++;
      row.push(field);
      field = "";
      if (row.some((f) => f.trim() !== "")) rows.push(row);
      row = [];
    } else field += ch;
  }
  row.push(field);
  if (row.some((f) => f.trim() !== "")) rows.push(row);
  return rows;
}

/** Comma, or semicolon / tab when the first line has more of them (European Excel). */
function detectSeparator(text: string): string {
  const first = text.split(/\r?\n/, 1)[0] ?? "";
  const counts = [",", ";", "\t"].map((s) => [s, first.split(s).length - 1] as const);
  counts.sort((a, b) => b[1] - a[1]);
  return counts[0][1] > 0 ? counts[0][0] : ",";
}

export interface RosterRow {
  line: number;
  identifier: string;
  arm: string;
  cage: string | null;
  sex: "female" | "male" | "unknown";
  strain: string | null;
  date_of_birth: string | null;
}

export interface RosterParse {
  rows: RosterRow[];
  errors: string[];
}

const COLUMNS: Record<keyof Omit<RosterRow, "line">, string[]> = {
  identifier: ["eartag", "identifier", "animal", "animalid", "id", "mouse", "tag"],
  arm: ["arm", "group", "treatmentarm"],
  cage: ["cage"],
  sex: ["sex", "gender"],
  strain: ["strain"],
  date_of_birth: ["dateofbirth", "dob", "birthdate", "born"],
};

const key = (s: string) => s.toLowerCase().replace(/[^a-z]/g, "");

/** Parse a roster; every problem is reported with its line number, nothing is guessed. */
export function parseRoster(text: string, armNames: string[]): RosterParse {
  const table = parseCsv(text);
  const errors: string[] = [];
  if (table.length < 2) return { rows: [], errors: ["the file has no animal rows under a header line"] };
  const header = table[0].map(key);
  const index: Partial<Record<keyof typeof COLUMNS, number>> = {};
  for (const [name, aliases] of Object.entries(COLUMNS) as [keyof typeof COLUMNS, string[]][]) {
    const i = header.findIndex((h) => aliases.includes(h));
    if (i >= 0) index[name] = i;
  }
  for (const required of ["identifier", "arm"] as const) {
    if (index[required] === undefined) {
      errors.push(`no "${required === "identifier" ? "ear tag" : "arm"}" column (header: ${table[0].join(", ")})`);
    }
  }
  if (errors.length) return { rows: [], errors };
  const arms = new Map(armNames.map((n) => [n.trim().toLowerCase(), n]));
  const seen = new Set<string>();
  const rows: RosterRow[] = [];
  table.slice(1).forEach((cells, k) => {
    const line = k + 2;
    const get = (name: keyof typeof COLUMNS) => {
      const i = index[name];
      const v = i === undefined ? "" : (cells[i] ?? "").trim();
      return v === "" ? null : v;
    };
    const identifier = get("identifier");
    const armText = get("arm");
    if (!identifier) return void errors.push(`line ${line}: no ear tag`);
    if (seen.has(identifier)) return void errors.push(`line ${line}: ear tag ${identifier} appears twice`);
    seen.add(identifier);
    const arm = armText ? arms.get(armText.toLowerCase()) : undefined;
    if (!arm) {
      return void errors.push(`line ${line}: arm "${armText ?? ""}" is not one of: ${armNames.join(", ")}`);
    }
    const sexText = (get("sex") ?? "unknown").toLowerCase();
    const sex = ({ f: "female", female: "female", m: "male", male: "male", unknown: "unknown", u: "unknown" } as const)[
      sexText as "f"
    ];
    if (!sex) return void errors.push(`line ${line}: sex "${sexText}" is not female, male or unknown`);
    const dob = get("date_of_birth");
    const date = dob ? isoDate(dob) : null;
    if (dob && !date) return void errors.push(`line ${line}: date of birth "${dob}" is not a date (YYYY-MM-DD)`);
    rows.push({ line, identifier, arm, cage: get("cage"), sex, strain: get("strain"), date_of_birth: date });
  });
  return { rows, errors };
}

/** YYYY-MM-DD from YYYY-MM-DD or YYYY/MM/DD (day-first or month-first dates are ambiguous). */
export function isoDate(text: string): string | null {
  const m = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$/.exec(text.trim());
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
  return `${m[1]}-${String(mo).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
}
