// summary.json and report.html of a run folder. Charts are drawn by ECharts on the
// server side as SVG and inlined, so the report opens offline in any browser.
import { writeFileSync } from 'node:fs';
import { type Run, RunState } from '@gsil/contracts';
import * as echarts from 'echarts';

type EventJson = Record<string, unknown> & { type?: string };

export interface ReportInput {
  run: Run;
  config: Record<string, unknown>;
  events: EventJson[];
}

interface StageEval {
  stage: string;
  iteration: number;
  version: string;
  examples: number;
  metrics: Record<string, number>;
}

const WIDTH = 760;
const HEIGHT = 320;

function svgChart(option: echarts.EChartsOption): string {
  const chart = echarts.init(null, null, {
    renderer: 'svg',
    ssr: true,
    width: WIDTH,
    height: HEIGHT,
  });
  chart.setOption({ animation: false, ...option });
  const svg = chart.renderToSVGString();
  chart.dispose();
  return svg;
}

function lineChart(title: string, steps: EventJson[], fields: string[]): string {
  return svgChart({
    title: { text: title, left: 'center', textStyle: { fontSize: 14 } },
    legend: { bottom: 0 },
    grid: { top: 40, left: 60, right: 20, bottom: 70 },
    xAxis: {
      type: 'value',
      name: 'step',
      nameLocation: 'middle',
      nameGap: 25,
      min: 'dataMin',
      minInterval: 1,
    },
    yAxis: { type: 'value', scale: true },
    series: fields.map((field) => ({
      name: field,
      type: 'line',
      showSymbol: false,
      data: steps.map((s) => [Number(s.step), Number(s[field])]),
    })),
  });
}

function evalChart(evals: StageEval[]): string {
  const names = ['answer_accuracy', 'equation_match', 'unparsable_rate'];
  return svgChart({
    title: {
      text: 'Dev metrics after each stage (SFT vs GSIL)',
      left: 'center',
      textStyle: { fontSize: 14 },
    },
    legend: { bottom: 0 },
    grid: { top: 40, left: 60, right: 20, bottom: 60 },
    xAxis: { type: 'category', data: evals.map((e) => e.version) },
    yAxis: { type: 'value', min: 0, max: 1 },
    series: names.map((name) => ({
      name,
      type: 'bar',
      data: evals.map((e) => e.metrics[name] ?? 0),
      label: {
        show: true,
        position: 'top',
        formatter: (p: { value: unknown }) => Number(p.value).toFixed(3),
      },
    })),
  });
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"]/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!,
  );
}

/** RUN_STATE_SUCCEEDED -> "succeeded". */
export function stateName(state: RunState): string {
  return (RunState[state] ?? String(state)).replace('RUN_STATE_', '').toLowerCase();
}

export function summarize(input: ReportInput) {
  // A resumed run evaluates its last complete version again: keep the latest per version.
  const latestEval = new Map<string, EventJson>();
  for (const e of input.events.filter((e) => e.type === 'eval')) {
    latestEval.set(String((e.model as { version?: string } | undefined)?.version ?? e.stage), e);
  }
  const evals: StageEval[] = [...latestEval.values()].map((e) => ({
    stage: String(e.stage),
    iteration: Number(e.iteration),
    version: String((e.model as { version?: string } | undefined)?.version ?? e.stage),
    examples: Number(e.examples),
    metrics: e.metrics as Record<string, number>,
  }));
  const phaseMs: Record<string, number> = {};
  for (const e of input.events.filter((e) => e.type === 'phase')) {
    phaseMs[String(e.phase)] = (phaseMs[String(e.phase)] ?? 0) + Number(e.durationMs);
  }
  const iterations = input.events.filter((e) => e.type === 'iteration');
  const run = input.run;
  return {
    runId: run.runId,
    // "succeeded", "failed", "cancelled", ... rather than the enum's number.
    state: stateName(run.state),
    // The TF.js backend the trainer resolved config.backend to (its last start's).
    backend: run.backend || undefined,
    error: run.error || undefined,
    finalModel: run.latestModel,
    durationMs:
      run.finishedUnixMs && run.startedUnixMs ? run.finishedUnixMs - run.startedUnixMs : undefined,
    config: input.config,
    evals,
    iterations: iterations.map(({ type: _type, runId: _r, seq: _s, ...rest }) => rest),
    phaseMs,
  };
}

export function writeReport(outDir: string, input: ReportInput): void {
  const summary = summarize(input);
  writeFileSync(`${outDir}/summary.json`, `${JSON.stringify(summary, null, 2)}\n`);

  const steps = input.events.filter((e) => e.type === 'step');
  const sft = steps.filter((s) => s.stage === 'sft');
  const gsil = steps.filter((s) => s.stage !== 'sft');
  const charts: string[] = [];
  if (sft.length > 0) charts.push(lineChart('SFT loss (NLL per token)', sft, ['loss']));
  if (gsil.length > 0) {
    charts.push(lineChart('GSIL loss', gsil, ['loss', 'lossReal', 'lossGenerated']));
    charts.push(
      lineChart('Rewards of demonstrations vs self-generated responses', gsil, [
        'rewardsReal',
        'rewardsGenerated',
        'rewardsMargin',
      ]),
    );
    charts.push(lineChart('Classifier accuracy', gsil, ['accuracy']));
  }
  if (summary.evals.length > 0) charts.push(evalChart(summary.evals));

  const metricNames = [...new Set(summary.evals.flatMap((e) => Object.keys(e.metrics)))];
  const table = [
    `<tr><th>model</th><th>examples</th>${metricNames.map((m) => `<th>${m}</th>`).join('')}</tr>`,
    ...summary.evals.map(
      (e) =>
        `<tr><td>${escapeHtml(e.version)}</td><td>${e.examples}</td>` +
        metricNames.map((m) => `<td>${(e.metrics[m] ?? Number.NaN).toFixed(4)}</td>`).join('') +
        '</tr>',
    ),
  ].join('\n');
  const phases = Object.entries(summary.phaseMs)
    .map(([phase, ms]) => `<tr><td>${phase}</td><td>${(ms / 1000).toFixed(1)} s</td></tr>`)
    .join('\n');

  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GSIL run ${escapeHtml(summary.runId)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:800px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}</style></head><body>
<h1>GSIL run ${escapeHtml(summary.runId)}</h1>
<p>State: ${summary.state}${summary.error ? ` (${escapeHtml(summary.error)})` : ''}.
Duration: ${summary.durationMs ? `${(summary.durationMs / 1000).toFixed(0)} s` : 'n/a'}.
Trained on the TF.js backend ${escapeHtml(summary.backend ?? 'n/a')}.</p>
<h2>Evaluation on the dev set</h2><table>${table}</table>
${charts.map((svg) => `<div>${svg}</div>`).join('\n')}
<h2>Time per phase</h2>
<p>Summed over stages. Scoring starts on each shard as its samples arrive, so score time (busy time of the scoring calls) overlaps sampling.</p>
<table>${phases}</table>
<h2>Configuration</h2><pre>${escapeHtml(JSON.stringify(summary.config, null, 2))}</pre>
</body></html>
`;
  writeFileSync(`${outDir}/report.html`, html);
}
