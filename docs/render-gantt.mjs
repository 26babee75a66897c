// Renders the first Gantt chart of a flowrun Markdown summary to SVG, for docs/gantt.png.
//
//   npm ci --prefix tests/mermaid                 # Mermaid and jsdom, pinned (once)
//   pytest examples -p flowrun --flowrun-summary /tmp/summary.md
//   node docs/render-gantt.mjs /tmp/summary.md > /tmp/gantt.svg
//   rsvg-convert --background-color=white --width=900 /tmp/gantt.svg > docs/gantt.png
//
// Mermaid renders inside a jsdom document (tests/mermaid/headless.mjs, shared with the
// tests' checker), so no browser is needed.
import { readFileSync } from 'node:fs';
import { headlessMermaid } from '../tests/mermaid/headless.mjs';

// jsdom has no layout to give the chart a width: 900px, as docs/gantt.png has.
const mermaid = await headlessMermaid({ gantt: { useWidth: 900 } });

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
