import { describe, expect, it } from "vitest";
import { isoDate, parseCsv, parseRoster } from "../src/lib/csv";

describe("parseCsv", () => {
  it("reads quoted fields with commas, doubled quotes and newlines (RFC 4180)", () => {
    expect(parseCsv('a,"b, c","say ""hi""","two\nlines"\r\n1,2,3,4\n')).toEqual([
      ["a", "b, c", 'say "hi"', "two\nlines"],
      ["1", "2", "3", "4"],
    ]);
  });
  it("reads semicolon-separated files (European Excel) and skips blank lines", () => {
    expect(parseCsv("\uFEFFtag;arm\n\n3466;Vehicle\n")).toEqual([
      ["tag", "arm"],
      ["3466", "Vehicle"],
    ]);
  });
});

describe("parseRoster", () => {
  const arms = ["Vehicle", "1D11 10 mg/kg"];
  it("maps loosely named columns and arms by name", () => {
    const r = parseRoster("Ear tag,Arm,Cage,Sex,Strain,Date of birth\n3466,vehicle,C1,F,NSG,2026-05-10\n3467,1D11 10 mg/kg,,male,,\n", arms);
    expect(r.errors).toEqual([]);
    expect(r.rows).toEqual([
      { line: 2, identifier: "3466", arm: "Vehicle", cage: "C1", sex: "female", strain: "NSG", date_of_birth: "2026-05-10" },
      { line: 3, identifier: "3467", arm: "1D11 10 mg/kg", cage: null, sex: "male", strain: null, date_of_birth: null },
    ]);
  });
  it("reports every bad line with its number and guesses nothing", () => {
    const r = parseRoster("tag,arm,sex,dob\n1,Vehicle,f,2026-02-30\n1,Vehicle,f,\n2,Placebo,f,\n3,Vehicle,x,\n", arms);
    expect(r.errors).toEqual([
      'line 2: date of birth "2026-02-30" is not a date (YYYY-MM-DD)',
      "line 3: ear tag 1 appears twice",
      'line 4: arm "Placebo" is not one of: Vehicle, 1D11 10 mg/kg',
      'line 5: sex "x" is not female, male or unknown',
    ]);
  });
  it("needs an ear tag and an arm column", () => {
    expect(parseRoster("cage,sex\nC1,f\n", arms).errors[0]).toMatch(/no "ear tag" column/);
  });
});

describe("isoDate", () => {
  it("accepts real dates only", () => {
    expect(isoDate("2026/5/1")).toBe("2026-05-01");
    expect(isoDate("2024-02-29")).toBe("2024-02-29");
    expect(isoDate("2025-02-29")).toBeNull();
    expect(isoDate("01/05/2026")).toBeNull();
  });
});
