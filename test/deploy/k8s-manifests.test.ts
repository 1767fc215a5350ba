// Sanity of the Kubernetes manifests without a cluster: every YAML under deploy/k8s
// parses; each workload's args are a `gsil serve` command line whose flags the CLI
// really has (read from `gsil serve --help`) and fit the service they are given to;
// probes use the gRPC health service on the gRPC port; Services, autoscalers and
// kustomizations point at things that exist. Overlays' JSON patches are applied too.
import { beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { EXECUTION_PROVIDERS } from '../../services/ratio/src/config.ts';
import { QUEUED_SEQUENCES_METRIC } from '../../services/sampler/src/main.ts';
import { REPO_ROOT, runCli } from '../support/processes.ts';

const K8S_DIR = join(REPO_ROOT, 'deploy/k8s');
const SERVICES = ['sampler', 'ratio', 'trainer'];

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML trees
type Manifest = Record<string, any>;

interface CliFlag {
  takesValue: boolean;
  /** Services the help text limits the flag to ("sampler/ratio: ..."), or all. */
  services: string[];
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [path] : [];
  });
}

function parseManifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
    return doc.toJS() as Manifest;
  });
}

/** `--name <value>  sampler/ratio: text` lines of the help output. */
function parseServeHelp(help: string): Map<string, CliFlag> {
  const flags = new Map<string, CliFlag>();
  const [options, ...settingSections] = help.split(/^Settings of /m);
  // The common options: "  --port <n>   gRPC port ..." (a "sampler/ratio: " prefix scopes one).
  const common = options.slice(options.indexOf('Options:'));
  for (const match of common.matchAll(/^\s+(?:-\w, )?--([a-z-]+)( <\w+>)?\s+(.*)$/gm)) {
    const scope = /^([a-z/]+): /.exec(match[3]);
    const services = scope ? scope[1].split('/') : SERVICES;
    flags.set(`--${match[1]}`, { takesValue: Boolean(match[2]), services });
  }
  // Each service's own settings: "Settings of sampler:", then lines such as
  // "  --max-batch-size <number>, env ...".
  for (const section of settingSections) {
    const service = section.slice(0, section.indexOf(':'));
    for (const match of section.matchAll(/^\s+--([a-z-]+) <\w+>,/gm)) {
      const flag = `--${match[1]}`;
      const known = flags.get(flag);
      if (known?.services.includes(service)) continue;
      flags.set(flag, { takesValue: true, services: [...(known?.services ?? []), service] });
    }
  }
  return flags;
}

/** RFC 6902 add/replace, the two operations our overlays use (JSON pointer, `-` appends). */
function applyJsonPatch(target: Manifest, ops: { op: string; path: string; value: unknown }[]) {
  for (const { op, path, value } of ops) {
    const keys = path
      .split('/')
      .slice(1)
      .map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~'));
    const last = keys.pop()!;
    let node = target;
    for (const key of keys) {
      if (!(key in node)) {
        if (op !== 'add') throw new Error(`patch path ${path}: no ${key}`);
        node[key] = {};
      }
      node = node[key];
    }
    if (op === 'replace' && !(last in node)) throw new Error(`replace ${path}: nothing there`);
    if (Array.isArray(node) && last === '-') node.push(value);
    else (node as Manifest)[last] = value;
  }
}

/** The manifests a kustomization builds: its resources, with its patches applied. */
function build(kustomizationDir: string): Manifest[] {
  const kustomization = parseYaml(
    readFileSync(join(kustomizationDir, 'kustomization.yaml'), 'utf8'),
  );
  const manifests: Manifest[] = (kustomization.resources ?? []).flatMap((resource: string) => {
    const path = join(kustomizationDir, resource);
    return statSync(path).isDirectory() ? build(path) : parseManifests(path);
  });
  for (const { target, patch } of kustomization.patches ?? []) {
    const matches = manifests.filter(
      (m) => m.kind === target.kind && m.metadata?.name === target.name,
    );
    expect(matches.length).toBe(1);
    applyJsonPatch(matches[0], parseYaml(patch));
  }
  return manifests;
}

let serveFlags: Map<string, CliFlag>;
const kustomizationDirs = yamlFiles(K8S_DIR)
  .filter((file) => file.endsWith('kustomization.yaml'))
  .map((file) => dirname(file));

beforeAll(async () => {
  const help = await runCli(['serve', '--help']);
  expect(help.code).toBe(0);
  serveFlags = parseServeHelp(help.stdout);
  // The parser must have understood the help text, or every check below is vacuous.
  expect(serveFlags.get('--port')).toEqual({ takesValue: true, services: SERVICES });
  expect(serveFlags.get('--runs-dir')?.services).toEqual(['trainer']);
});

describe('deploy/k8s', () => {
  test('every YAML file parses', () => {
    const files = yamlFiles(K8S_DIR);
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const file of files) {
      for (const manifest of parseManifests(file)) {
        expect(typeof manifest.apiVersion).toBe('string');
        expect(typeof manifest.kind).toBe('string');
      }
    }
  });

  for (const dir of kustomizationDirs) {
    describe(relative(K8S_DIR, dir), () => {
      test('workload args are real `gsil serve` flags, probes use gRPC health', () => {
        const workloads = build(dir).filter((m) => ['Deployment', 'StatefulSet'].includes(m.kind));
        expect(workloads.length).toBeGreaterThan(0);
        for (const workload of workloads) {
          const where = `${relative(K8S_DIR, dir)} ${workload.kind}/${workload.metadata.name}`;
          for (const container of workload.spec.template.spec.containers) {
            const args: string[] = container.args.map(String);
            expect(args[0], where).toBe('serve');
            const service = args[1];
            expect(SERVICES, where).toContain(service);

            const values = new Map<string, string>();
            for (let i = 2; i < args.length; i++) {
              const flag = serveFlags.get(args[i]);
              if (!flag) throw new Error(`${where}: '${args[i]}' is not a gsil serve flag`);
              expect(flag.services, `${where}: ${args[i]}`).toContain(service);
              if (flag.takesValue) {
                const value = args[++i];
                expect(value === undefined || value.startsWith('--'), `${where}`).toBe(false);
                values.set(args[i - 1], value);
              }
            }
            const grpcPort = Number(values.get('--port'));
            expect(Number.isInteger(grpcPort) && grpcPort > 0, `${where}: --port`).toBe(true);
            if (values.has('--provider')) {
              expect(EXECUTION_PROVIDERS as readonly string[]).toContain(values.get('--provider')!);
            }

            const ports = new Map<string, number>(
              container.ports.map((p: Manifest) => [p.name, p.containerPort]),
            );
            expect(ports.get('grpc'), where).toBe(grpcPort);
            if (values.has('--metrics-port')) {
              expect(ports.get('metrics'), where).toBe(Number(values.get('--metrics-port')));
            }
            for (const probe of [container.readinessProbe, container.livenessProbe]) {
              expect(probe?.grpc?.port, `${where}: probes`).toBe(grpcPort);
            }
          }
        }
      });

      test('Services select pods and ports that exist; autoscalers name workloads', () => {
        const manifests = build(dir);
        const workloads = manifests.filter((m) => ['Deployment', 'StatefulSet'].includes(m.kind));
        for (const service of manifests.filter((m) => m.kind === 'Service')) {
          const selected = workloads.filter((w) =>
            Object.entries(service.spec.selector).every(
              ([key, value]) => w.spec.template.metadata.labels[key] === value,
            ),
          );
          expect(selected.length, `Service/${service.metadata.name}`).toBe(1);
          const portNames = selected[0].spec.template.spec.containers.flatMap((c: Manifest) =>
            c.ports.map((p: Manifest) => p.name),
          );
          for (const port of service.spec.ports) expect(portNames).toContain(port.targetPort);
        }
        for (const hpa of manifests.filter((m) => m.kind === 'HorizontalPodAutoscaler')) {
          const { kind, name } = hpa.spec.scaleTargetRef;
          expect(workloads.some((w) => w.kind === kind && w.metadata.name === name)).toBe(true);
        }
        // Replicas reach the trainer by its Service name.
        const trainerService = manifests.find(
          (m) => m.kind === 'Service' && m.spec.selector.app === 'gsil-trainer',
        );
        for (const workload of workloads) {
          const args: string[] = workload.spec.template.spec.containers[0].args.map(String);
          if (args.includes('--model-store')) {
            const store = args[args.indexOf('--model-store') + 1];
            expect(store.split(':')[0]).toBe(trainerService?.metadata.name);
          }
        }
      });

      test('kustomization resources exist', () => {
        const kustomization = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
        for (const resource of kustomization.resources ?? []) {
          expect(existsSync(join(dir, resource)), resource).toBe(true);
        }
      });
    });
  }

  test('the gpu overlay runs samplers on the CUDA provider with one decode thread', () => {
    const sampler = build(join(K8S_DIR, 'overlays/gpu')).find(
      (m) => m.kind === 'Deployment' && m.metadata.name === 'gsil-sampler',
    )!;
    const container = sampler.spec.template.spec.containers[0];
    expect(container.args.slice(-4)).toEqual(['--provider', 'cuda', '--decode-workers', '1']);
    expect(container.resources.limits['nvidia.com/gpu']).toBe(1);
  });

  test('the gpu overlay scales samplers on the queue-depth gauge the sampler exports', () => {
    const manifests = build(join(K8S_DIR, 'overlays/gpu'));
    const hpa = manifests.find(
      (m) => m.kind === 'HorizontalPodAutoscaler' && m.metadata.name === 'gsil-sampler',
    )!;
    expect(hpa.spec.metrics).toEqual([
      {
        type: 'Pods',
        pods: {
          metric: { name: QUEUED_SEQUENCES_METRIC },
          target: { type: 'AverageValue', averageValue: '128' },
        },
      },
    ]);
    // The gauge is scraped from the port the pods' annotations announce.
    const sampler = manifests.find(
      (m) => m.kind === 'Deployment' && m.metadata.name === 'gsil-sampler',
    )!;
    const args: string[] = sampler.spec.template.spec.containers[0].args.map(String);
    const annotations = sampler.spec.template.metadata.annotations ?? {};
    expect(annotations['prometheus.io/port']).toBe(args[args.indexOf('--metrics-port') + 1]);
  });
});
