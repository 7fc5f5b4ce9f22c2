import { describe, expect, it } from "vitest";
import { fieldDefinitions } from "../src/lib/definitions";

describe("fieldDefinitions", () => {
  it("collects descriptions through $ref, anyOf and arrays, once per schema", () => {
    const schemas = {
      Root: { properties: { per_day: { anyOf: [{ $ref: "#/components/schemas/Table" }, {}] } } },
      Table: { properties: { rows: { items: { $ref: "#/components/schemas/Row" }, description: "one per day" } } },
      Row: {
        properties: {
          day: { description: "day since injection" },
          welch: { anyOf: [{ $ref: "#/components/schemas/Test" }], description: "Welch t-test" },
        },
      },
      Test: { properties: { p_value: { description: "two-sided p" }, row: { $ref: "#/components/schemas/Row" } } },
    };
    expect(fieldDefinitions(schemas, "Root")).toEqual({
      rows: "one per day",
      day: "day since injection",
      welch: "Welch t-test",
      p_value: "two-sided p",
    });
  });
});
