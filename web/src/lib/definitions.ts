/**
 * Definitions of the comparison's result fields, read from the server's own OpenAPI document
 * (every result field is described there), so a hover shows the same text as /docs.
 */

type Schema = { $ref?: string; properties?: Record<string, Schema>; items?: Schema; anyOf?: Schema[]; description?: string };

/** Field name → description, for every schema reachable from `root` (first one wins). */
export function fieldDefinitions(schemas: Record<string, Schema>, root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  const visit = (s: Schema | undefined) => {
    if (!s) return;
    if (s.$ref) {
      const name = s.$ref.split("/").pop()!;
      if (seen.has(name)) return;
      seen.add(name);
      visit(schemas[name]);
      return;
    }
    for (const [k, v] of Object.entries(s.properties ?? {})) {
      const d = v.description ?? v.anyOf?.find((x) => x.description)?.description;
      if (d && !(k in out)) out[k] = d;
      visit(v);
    }
    visit(s.items);
    for (const x of s.anyOf ?? []) visit(x);
  };
  visit({ $ref: `#/components/schemas/${root}` });
  return out;
}

let cached: Promise<Record<string, string>> | null = null;

export function resultDefinitions(): Promise<Record<string, string>> {
  cached ??= fetch("/openapi.json")
    .then((r) => r.json())
    .then((d) => fieldDefinitions(d.components?.schemas ?? {}, "ComparisonResults"))
    .catch(() => ({}));
  return cached;
}
