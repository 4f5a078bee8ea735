// Parse Mermaid diagrams with the real mermaid parser (in jsdom): node mermaid_check.mjs FILE...
// Prints one JSON line per file: {"file": ..., "ok": true, "type": ...} or {"file": ..., "ok": false, "error": ...}
import fs from "fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const mermaid = (await import("mermaid")).default;
mermaid.initialize({ startOnLoad: false });
let failed = false;
for (const file of process.argv.slice(2)) {
  const src = fs.readFileSync(file, "utf8");
  try {
    const result = await mermaid.parse(src);
    console.log(JSON.stringify({ file, ok: true, type: result.diagramType }));
  } catch (e) {
    failed = true;
    console.log(JSON.stringify({ file, ok: false, error: String(e.message || e).slice(0, 500) }));
  }
}
process.exit(failed ? 1 : 0);
