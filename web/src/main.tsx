import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, clearKey, getKey, setKey } from "./lib/api";
import { AcquisitionPage } from "./pages/acquisition";
import { AnimalPage } from "./pages/animal";
import { AuditPage } from "./pages/audit";
import { ComparePage } from "./pages/compare";
import { ExportPanel } from "./pages/exports";
import { SessionsPage } from "./pages/sessions";
import { SetupPage } from "./pages/setup";
import { StudiesPage } from "./pages/studies";
import type { Me, Study } from "./types";
import { ErrorBox, useLoad } from "./ui";
import "./style.css";

/** Hash routes (#/…): the server only ever serves `/`, and nothing secret is in a URL. */
function useRoute(): string[] {
  const parse = () => location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = () => setRoute(parse());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

function SignIn({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    const key = (new FormData(e.target as HTMLFormElement).get("key") as string).trim();
    setBusy(true);
    setError(undefined);
    try {
      const me = await api<Me>("/me", { headers: { "X-API-Key": key } });
      setKey(key);
      onSignedIn(me);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? new Error("This API key is not valid (or was revoked).") : err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <main class="signin">
      <h1>osteolux</h1>
      <p>Bioluminescence imaging of bone metastasis: studies, images, ROIs and arm comparisons.</p>
      <form onSubmit={submit} class="card">
        <label class="field">
          <span class="field-label">API key</span>
          <input name="key" type="password" autocomplete="off" required placeholder="olx_…" />
          <span class="hint">
            Kept in this browser tab only (sessionStorage) until you sign out or close the tab. A lab admin makes
            keys with <code>osteolux create-lab</code> or <code>POST /keys</code>.
          </span>
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <ErrorBox error={error} />
      </form>
      <p class="muted">
        The REST API and its documentation: <a href="/docs">/docs</a>
      </p>
    </main>
  );
}

function StudyShell({ route, me }: { route: string[]; me: Me }) {
  const [, studyId, tab = "setup", ...rest] = route;
  const { data: study, error } = useLoad(() => api<Study>(`/studies/${studyId}`), [studyId]);
  const tabs: [string, string][] = [
    ["setup", "Set-up"],
    ["sessions", "Imaging sessions"],
    ["compare", "Compare arms"],
    ["audit", "Audit trail"],
  ];
  return (
    <div>
      <nav class="crumbs">
        <a href="#/">Studies</a> › <span>{study?.name ?? "…"}</span>
      </nav>
      <ErrorBox error={error} />
      {study ? (
        <>
          <h1>{study.name}</h1>
          <p class="muted">
            {study.cell_line} · {study.injection_model.replace(/_/g, " ")} · day 0 = {study.day0}
            {study.iacuc_number ? ` · ${study.iacuc_number}` : ""}
          </p>
          <ExportPanel study={study} canWrite={me.role === "admin" || me.role === "editor"} />
          <div class="tabs" role="tablist">
            {tabs.map(([id, label]) => (
              <a role="tab" aria-selected={tab === id || (tab === "a" && id === "sessions") || (tab === "animal" && id === "setup")} href={`#/s/${studyId}/${id}`}>
                {label}
              </a>
            ))}
          </div>
          {tab === "setup" && <SetupPage study={study} me={me} />}
          {tab === "sessions" && <SessionsPage study={study} />}
          {tab === "a" && (
            <AcquisitionPage
              study={study}
              sessionId={rest[0]}
              acquisitionId={rest[1]}
              canWrite={me.role === "admin" || me.role === "editor"}
            />
          )}
          {tab === "compare" && <ComparePage study={study} />}
          {tab === "audit" && <AuditPage study={study} />}
          {tab === "animal" && <AnimalPage study={study} animalId={rest[0]} />}
        </>
      ) : null}
    </div>
  );
}

function App() {
  const route = useRoute();
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(!!getKey());
  useEffect(() => {
    const out = () => setMe(null);
    addEventListener("osteolux:signed-out", out);
    return () => removeEventListener("osteolux:signed-out", out);
  }, []);
  useEffect(() => {
    if (!getKey()) return;
    api<Me>("/me").then(
      (m) => {
        setMe(m);
        setChecking(false);
      },
      () => {
        clearKey();
        setChecking(false);
      },
    );
  }, []);
  if (checking) return <p class="muted">Checking your key…</p>;
  if (!me) return <SignIn onSignedIn={setMe} />;
  function signOut() {
    clearKey();
    setMe(null);
    location.hash = "";
  }
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          osteolux
        </a>
        <span class="muted">
          {me.lab_name} · {me.role}
        </span>
        <span class="spacer" />
        <a href="/docs" target="_blank" rel="noopener">
          API docs
        </a>
        <button class="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>{route[0] === "s" && route[1] ? <StudyShell route={route} me={me} /> : <StudiesPage me={me} />}</main>
    </>
  );
}

performance.mark("osteolux:script");
const root = document.getElementById("app")!;
root.textContent = ""; // the static "Loading…" line
render(<App />, root);
