import { defineConfig } from "vitest/config";

// The workspace is served by osteolux itself at `/` (app/workspace), under a strict
// Content-Security-Policy: no inline script, everything from this origin.
export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: "es2022",
  },
  server: {
    proxy: Object.fromEntries(
      ["/studies", "/me", "/keys", "/health", "/openapi.json"].map((p) => [
        p,
        "http://127.0.0.1:8000",
      ]),
    ),
  },
  test: { include: ["test/**/*.test.ts"], environment: "node" },
});
