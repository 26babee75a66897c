// Checks Mermaid diagrams with the real Mermaid library, headless: no browser.
//
//   node check.mjs FILE...         each FILE is Markdown (its ```mermaid blocks are checked)
//   node check.mjs < FILE          or Mermaid text (checked as one diagram)
//   node check.mjs --json FILE...  and print what the diagrams show, as JSON: per file, the
//                                  gantt bars (id, name as rendered, section, start and end
//                                  in ms, crit, milestone) and the flowchart nodes (id,
//                                  label as rendered, classes) and edges
//
// Every diagram is parsed with mermaid.parse() and rendered to SVG with mermaid.render()
// inside a jsdom document (headless.mjs: text is measured by a stub, layout is not the point). Mermaid's
// gantt parser accepts task data it then silently replaces (an unknown `after` id becomes
// today, an unparsable date throws only at render), so gantt tasks are also checked for a
// valid start before a valid end and for unique ids. Exit status: 0 when every diagram is
// valid, 1 with Mermaid's error on stderr when one is not, 2 on bad usage.
import { readFileSync } from 'node:fs';
import { headlessMermaid } from './headless.mjs';

const mermaid = await headlessMermaid();

/** The diagrams of `text`: its ```mermaid blocks, or the whole text when it has none. */
function diagrams(text) {
  const blocks = [];
  const fence = /^(`{3,}|~{3,})[ \t]*mermaid[ \t]*\n([\s\S]*?)^\1[ \t]*$/gm;
  for (const match of text.matchAll(fence)) {
    const line = text.slice(0, match.index).split('\n').length + 1;
    blocks.push({ line, source: match[2] });
  }
  if (blocks.length === 0 && !/^(`{3,}|~{3,})/m.test(text)) blocks.push({ line: 1, source: text });
  return blocks;
}

function checkGantt(db) {
  const seen = new Set();
  for (const task of db.getTasks()) {
    const start = task.startTime;
    const end = task.endTime;
    const where = `gantt task '${task.id}' (${String(task.task).trim()})`;
    if (!(start instanceof Date) || Number.isNaN(start.getTime())) throw new Error(`${where}: invalid start`);
    if (!(end instanceof Date) || Number.isNaN(end.getTime())) throw new Error(`${where}: invalid end`);
    if (end < start) throw new Error(`${where}: ends before it starts (${start.toISOString()} > ${end.toISOString()})`);
    if (seen.has(task.id)) throw new Error(`${where}: duplicate task id`);
    seen.add(task.id);
  }
}

/** The text a viewer reads in `element`, a <br> read as a newline. */
function shownText(element) {
  const copy = element.cloneNode(true);
  for (const br of copy.querySelectorAll('br')) br.replaceWith('\n');
  return copy.textContent.trim();
}

/** What the rendered diagram shows, for tests to compare with what was meant. */
function describe(diagram, svgId, svg) {
  const holder = document.createElement('div');
  holder.innerHTML = svg;
  if (diagram.type === 'gantt') {
    return {
      type: 'gantt',
      bars: diagram.db.getTasks().map((task) => {
        const label = holder.querySelector(`[id="${svgId}-${task.id}-text"]`);
        return {
          id: task.id,
          name: label ? shownText(label) : null,
          section: task.section,
          start: task.startTime.getTime(),
          end: task.endTime.getTime(),
          crit: Boolean(task.crit),
          milestone: Boolean(task.milestone),
        };
      }),
    };
  }
  if (diagram.type.startsWith('flowchart')) {
    const nodes = [];
    for (const vertex of diagram.db.getVertices().values()) {
      const group = holder.querySelector(`g.node[id^="${svgId}-flowchart-${vertex.id}-"]`);
      nodes.push({ id: vertex.id, label: group ? shownText(group) : null, classes: vertex.classes });
    }
    const edges = diagram.db.getEdges().map((edge) => [edge.start, edge.end]);
    return { type: 'flowchart', nodes, edges };
  }
  return { type: diagram.type };
}

let counter = 0;
async function check(source) {
  await mermaid.parse(source); // throws Mermaid's parse error
  const svgId = `check${counter++}`;
  const { svg } = await mermaid.render(svgId, source); // throws what rendering finds
  const diagram = await mermaid.mermaidAPI.getDiagramFromText(source);
  if (diagram.type === 'gantt') checkGantt(diagram.db);
  return describe(diagram, svgId, svg);
}

async function main() {
  const args = process.argv.slice(2);
  const json = args[0] === '--json';
  const inputs = json ? args.slice(1) : args;
  const files = inputs.length
    ? inputs.map((name) => ({ name, text: readFileSync(name, 'utf8') }))
    : [{ name: '<stdin>', text: readFileSync(0, 'utf8') }];
  let failed = 0;
  let count = 0;
  const described = [];
  for (const { name, text } of files) {
    const shown = { file: name, diagrams: [] };
    described.push(shown);
    const blocks = diagrams(text);
    if (blocks.length === 0) {
      console.error(`${name}: no mermaid block`);
      failed++;
    }
    for (const { line, source } of blocks) {
      count++;
      try {
        shown.diagrams.push({ line, ...(await check(source)) });
      } catch (error) {
        failed++;
        const message = error && error.message ? error.message : String(error);
        console.error(`${name}:${line}: invalid mermaid: ${message}`);
      }
    }
  }
  if (failed) process.exit(1);
  if (json) {
    console.log(JSON.stringify(described));
    return;
  }
  console.log(`ok: ${count} mermaid diagram${count === 1 ? '' : 's'} in ${files.length} input${files.length === 1 ? '' : 's'}`);
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(2);
});
