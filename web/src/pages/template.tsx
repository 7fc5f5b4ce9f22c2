import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../lib/api";
import { type Body, type TemplateSite, moveSite, resizeSite, siteBox } from "../lib/template";
import { SITES, siteLabel } from "../types";
import { ErrorBox, Loading } from "../ui";

const BODY: Body = { cx: 150, cy: 230, A: 170, B: 70 };

/** The study's ROI site template drawn on a dorsal body outline (head up): drag a site to
 * move it, its handle to resize; saved with PUT /studies/{id}/roi-template (audited) and
 * placed on every mouse found in later uploads. */
export function TemplateEditor({ studyId, canWrite }: { studyId: string; canWrite: boolean }) {
  const path = `/studies/${studyId}/roi-template`;
  const [sites, setSites] = useState<TemplateSite[] | null>(null);
  const [isDefault, setIsDefault] = useState(false);
  const [selected, setSelected] = useState<number | null>(null);
  // a move keeps the offset between the pointer and the site's centre where it was grabbed
  const [drag, setDrag] = useState<{ i: number; kind: "move" | "resize"; dx: number; dy: number } | null>(null);
  const [dirty, setDirty] = useState(false);
  const [reason, setReason] = useState("");
  const [error, setError] = useState<unknown>();
  const [saved, setSaved] = useState(false);
  const svg = useRef<SVGSVGElement>(null);
  useEffect(() => {
    api<{ sites: TemplateSite[]; is_default: boolean }>(path).then((t) => {
      setSites(t.sites);
      setIsDefault(t.is_default);
    }, setError);
  }, [path]);
  if (!sites) return error ? <ErrorBox error={error} /> : <Loading what="the ROI template" />;

  function xy(e: PointerEvent) {
    const r = svg.current!.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top] as const;
  }
  function update(i: number, s: TemplateSite) {
    setSites((all) => all!.map((x, k) => (k === i ? s : x)));
    setDirty(true);
    setSaved(false);
  }
  async function save() {
    setError(undefined);
    try {
      // a header value is ASCII
      const why = reason.trim().replace(/[^\x20-\x7e]/g, "?");
      const headers: Record<string, string> = why ? { "X-Change-Reason": why } : {};
      await api(path, { method: "PUT", json: { sites }, headers });
      setDirty(false);
      setSaved(true);
      setIsDefault(false);
    } catch (e) {
      setError(e);
    }
  }
  const sel = selected !== null ? sites[selected] : null;
  return (
    <div class="template">
      <svg
        ref={svg}
        width={300}
        height={460}
        class="body"
        data-testid="template-body"
        onPointerMove={(e) => {
          if (!drag || !canWrite) return;
          const [x, y] = xy(e);
          const s = sites[drag.i];
          update(drag.i, drag.kind === "move" ? moveSite(BODY, s, x + drag.dx, y + drag.dy) : resizeSite(BODY, s, x, y));
        }}
        onPointerUp={() => setDrag(null)}
        onPointerLeave={() => setDrag(null)}
      >
        <ellipse cx={BODY.cx} cy={BODY.cy - BODY.A - 8} rx={22} ry={14} class="outline" />
        <ellipse cx={BODY.cx - 26} cy={BODY.cy - BODY.A + 4} rx={11} ry={9} class="outline" />
        <ellipse cx={BODY.cx + 26} cy={BODY.cy - BODY.A + 4} rx={11} ry={9} class="outline" />
        <ellipse cx={BODY.cx} cy={BODY.cy} rx={BODY.B} ry={BODY.A} class="outline" />
        <path d={`M${BODY.cx},${BODY.cy + BODY.A} q 10,30 -6,60`} class="outline tail" />
        <text x={BODY.cx} y={18} text-anchor="middle" class="axis">
          head (dorsal view)
        </text>
        <text x={8} y={BODY.cy} class="axis">
          L
        </text>
        <text x={284} y={BODY.cy} class="axis">
          R
        </text>
        {sites.map((s, i) => {
          const b = siteBox(BODY, s);
          const common = {
            class: `site ${i === selected ? "selected" : ""}`,
            "data-site": s.name,
            onPointerDown: (e: PointerEvent) => {
              e.preventDefault();
              const [x, y] = xy(e);
              setSelected(i);
              setDrag({ i, kind: "move", dx: b.x - x, dy: b.y - y });
            },
          };
          return s.shape === "circle" ? (
            <circle cx={b.x} cy={b.y} r={b.r} {...common}>
              <title>{s.name}</title>
            </circle>
          ) : (
            <rect x={b.x - b.w! / 2} y={b.y - b.h! / 2} width={b.w} height={b.h} {...common}>
              <title>{s.name}</title>
            </rect>
          );
        })}
        {sel && canWrite && (() => {
          const b = siteBox(BODY, sel);
          const hx = sel.shape === "circle" ? b.x + b.r! : b.x + b.w! / 2;
          const hy = sel.shape === "circle" ? b.y : b.y + b.h! / 2;
          return (
            <rect
              x={hx - 5}
              y={hy - 5}
              width={10}
              height={10}
              class="handle"
              data-handle="resize"
              onPointerDown={(e: PointerEvent) => {
                e.preventDefault();
                e.stopPropagation();
                setDrag({ i: selected!, kind: "resize", dx: 0, dy: 0 });
              }}
            />
          );
        })()}
      </svg>
      <div>
        <p class="hint">
          {isDefault ? "The built-in template (not saved for this study yet). " : ""}Each site is placed on every mouse
          found on a photograph, scaled to its body. Drag a site to move it, its square handle to resize.
        </p>
        <table class="list compact" data-testid="template-sites">
          <thead>
            <tr>
              <th>Name</th>
              <th>Site</th>
              <th>Shape</th>
              <th title="Along the body: −1 head … +1 tail">u</th>
              <th title="Across: − image left (dorsal)">v</th>
              <th>Size</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {sites.map((s, i) => (
              <tr class={i === selected ? "selected" : ""} onClick={() => setSelected(i)}>
                <td>
                  <input value={s.name} disabled={!canWrite} onInput={(e) => update(i, { ...s, name: (e.target as HTMLInputElement).value })} />
                </td>
                <td>
                  <select value={s.site} disabled={!canWrite} onChange={(e) => update(i, { ...s, site: (e.target as HTMLSelectElement).value })}>
                    {SITES.filter((x) => x !== "whole_body").map((x) => (
                      <option value={x}>{siteLabel(x)}</option>
                    ))}
                  </select>
                </td>
                <td>{s.shape}</td>
                <td class="num">{s.u.toFixed(2)}</td>
                <td class="num">{s.v.toFixed(2)}</td>
                <td class="num">{s.shape === "circle" ? `r ${s.size_v.toFixed(2)}` : `${s.size_u.toFixed(2)} × ${s.size_v.toFixed(2)}`}</td>
                <td>
                  {canWrite && (
                    <button class="link" onClick={() => (setSites(sites.filter((_, k) => k !== i)), setDirty(true), setSelected(null))}>
                      remove
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {canWrite && (
          <div class="actions">
            <button
              class="secondary"
              onClick={() => {
                setSites([...sites, { name: `site ${sites.length + 1}`, site: "custom", shape: "circle", u: 0, v: 0, size_u: 0.3, size_v: 0.3 }]);
                setSelected(sites.length);
                setDirty(true);
              }}
            >
              Add a circle
            </button>
            <button
              class="secondary"
              onClick={() => {
                setSites([...sites, { name: `site ${sites.length + 1}`, site: "custom", shape: "rectangle", u: 0, v: 0, size_u: 0.5, size_v: 0.3 }]);
                setSelected(sites.length);
                setDirty(true);
              }}
            >
              Add a rectangle
            </button>
          </div>
        )}
        {canWrite && dirty && (
          <div class="actions">
            <input placeholder="Why (optional, audited)" value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} aria-label="Template reason" />
            <button onClick={save}>Save template</button>
          </div>
        )}
        {saved && <p class="ok" data-testid="template-saved">Saved: uploads from now on use this template.</p>}
        <ErrorBox error={error} />
      </div>
    </div>
  );
}
