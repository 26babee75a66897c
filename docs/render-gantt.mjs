// Renders the first Gantt chart of a flowrun Markdown summary to SVG, for docs/gantt.png.
//
//   npm ci --prefix tests/mermaid                 # Mermaid and jsdom, pinned (once)
//   pytest examples -p flowrun --flowrun-summary /tmp/summary.md
//   node docs/render-gantt.mjs /tmp/summary.md > /tmp/gantt.svg
//   rsvg-convert --background-color=white --width=900 /tmp/gantt.svg > docs/gantt.png
//
// Mermaid renders inside a jsdom document, with the same stubs as tests/mermaid/check.mjs
// (text measured at 8px per character: jsdom does no layout), so no browser is needed.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const require = createRequire(new URL('../tests/mermaid/package.json', import.meta.url));
const { JSDOM } = require('jsdom');

const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
const { window } = dom;
globalThis.window = window;
globalThis.document = window.document;
for (const name of [
  'Element', 'HTMLElement', 'SVGElement', 'Node', 'DOMParser', 'XMLSerializer',
  'MutationObserver', 'CSSStyleSheet', 'getComputedStyle',
]) {
  globalThis[name] = window[name];
}
if (!('navigator' in globalThis)) globalThis.navigator = window.navigator;
window.SVGElement.prototype.getBBox = function () {
  return { x: 0, y: 0, width: 8 * (this.textContent || '').length, height: 16 };
};
window.SVGElement.prototype.getComputedTextLength = function () {
  return 8 * (this.textContent || '').length;
};

const { default: mermaid } = await import(pathToFileURL(require.resolve('mermaid')).href);
// jsdom has no layout to give the chart a width: 900px, as docs/gantt.png has.
mermaid.initialize({
  startOnLoad: false,
  logLevel: 'fatal',
  securityLevel: 'strict',
  gantt: { useWidth: 900 },
});

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: node docs/render-gantt.mjs SUMMARY.md > gantt.svg');
  process.exit(2);
}
const text = readFileSync(file, 'utf8');
const gantt = [...text.matchAll(/^```mermaid\n([\s\S]*?)^```$/gm)]
  .map((match) => match[1])
  .find((source) => source.trimStart().startsWith('gantt'));
if (!gantt) {
  console.error(`${file}: no mermaid gantt block`);
  process.exit(1);
}
const { svg } = await mermaid.render('gantt', gantt);
process.stdout.write(svg);
