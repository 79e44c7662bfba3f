// Summarises a V8 .cpuprofile (from `node --cpu-prof`): the frames with the
// most self time, and self time per source file, as a share of all samples.
//
//   node dist/bench/profile-summary.js FILE.cpuprofile [TOP (25)]
//
// Used to profile `blockcache serve` on the hot path:
//   bash bench/run.sh --only hot --pattern 'randread QD32' --no-record --cpu-prof /tmp/prof
import * as fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function shortUrl(url: string): string {
  const at = url.indexOf('/dist/');
  if (at >= 0) return url.slice(at + 6);
  return url.replace(/^file:\/\//, '').replace(/^node:/, 'node:');
}

function main(): void {
  const file = process.argv[2];
  const top = Number(process.argv[3] ?? 25);
  if (file === undefined) throw new Error('usage: profile-summary FILE.cpuprofile [TOP]');
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  let totalUs = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
    totalUs += delta;
  });
  const frames = new Map<string, number>();
  const files = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const where = frame.url === '' ? '' : ` ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
    const name = `${frame.functionName || '(anonymous)'}${where}`;
    frames.set(name, (frames.get(name) ?? 0) + us);
    const group = frame.url === '' ? frame.functionName || '(native)' : shortUrl(frame.url).replace(/:.*$/, '');
    files.set(group, (files.get(group) ?? 0) + us);
  }
  const print = (title: string, entries: Map<string, number>) => {
    process.stdout.write(`${title} (of ${(totalUs / 1e6).toFixed(1)} s sampled)\n`);
    for (const [name, us] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`${((100 * us) / totalUs).toFixed(1).padStart(5)}%  ${name}\n`);
    }
    process.stdout.write('\n');
  };
  print('self time by frame', frames);
  print('self time by file', files);
}

main();
