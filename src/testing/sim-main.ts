// The crash simulator's command line (npm run sim -- --seeds N):
//
//   node dist/src/testing/sim-main.js --seeds N [--seed S] [--ops N] [--cycles N] [--canary NAME] [--origin-mib-max N]
//                                     [--ram on|off|random] [--verbose]
//
// Runs seeds S .. S+N-1 (S defaults to a random start, printed so it can be
// replayed; --seed S alone runs that one seed). Prints one line per failing
// seed with the command that replays it, and a summary; exits 1 on any
// violation. Testing only; never imported by product code.
import { CANARIES, CanaryName, RamChoice, runSimulation } from './crash-simulator.js';

interface Arguments {
  seeds: number;
  seed: number | undefined;
  ops: number | undefined;
  cycles: number | undefined;
  canary: CanaryName | undefined;
  originMiBMax: number | undefined;
  ram: RamChoice | undefined;
  verbose: boolean;
}

function parse(argv: string[]): Arguments {
  const result: Arguments = { seeds: 1, seed: undefined, ops: undefined, cycles: undefined, canary: undefined, originMiBMax: undefined, ram: undefined, verbose: false };
  let seedsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${name} needs a value`);
      return next;
    };
    const integer = (): number => {
      const text = value();
      const parsed = Number(text);
      if (!Number.isSafeInteger(parsed) || parsed < 0) throw new Error(`${name} must be a non-negative integer, not ${text}`);
      return parsed;
    };
    switch (name) {
      case '--seeds': result.seeds = integer(); seedsGiven = true; break;
      case '--seed': result.seed = integer(); break;
      case '--ops': result.ops = integer(); break;
      case '--cycles': result.cycles = integer(); break;
      case '--canary': {
        const canary = value();
        if (!(CANARIES as readonly string[]).includes(canary)) throw new Error(`unknown canary ${canary}; one of ${CANARIES.join(', ')}`);
        result.canary = canary as CanaryName;
        break;
      }
      case '--origin-mib-max': result.originMiBMax = integer(); break;
      case '--ram': {
        const ram = value();
        if (ram !== 'on' && ram !== 'off' && ram !== 'random') throw new Error(`--ram must be on, off or random, not ${ram}`);
        result.ram = ram;
        break;
      }
      case '--verbose': result.verbose = true; break;
      case '--help':
        console.log('usage: sim-main --seeds N [--seed S] [--ops N] [--cycles N] [--canary NAME] [--origin-mib-max N] [--ram on|off|random] [--verbose]');
        console.log(`canaries: ${CANARIES.join(', ')}`);
        process.exit(0);
      // falls through (exit does not return)
      default: throw new Error(`unknown argument ${name}`);
    }
  }
  if (!seedsGiven && result.seed === undefined) result.seeds = 100;
  return result;
}

async function main(): Promise<number> {
  let args: Arguments;
  try {
    args = parse(process.argv.slice(2));
  } catch (error) {
    console.error(`sim-main: ${(error as Error).message}`);
    return 2;
  }
  const start = args.seed ?? Math.floor(Math.random() * 2 ** 31);
  const began = Date.now();
  let failing = 0;
  let cycles = 0;
  let requests = 0;
  let recoveredDirty = 0;
  for (let seed = start; seed < start + args.seeds; seed++) {
    const result = await runSimulation({
      seed, opsPerCycle: args.ops, crashCycles: args.cycles, canary: args.canary, originMiBMax: args.originMiBMax, ram: args.ram,
      log: args.verbose ? (line) => console.log(`  seed ${seed}: ${line}`) : undefined,
    });
    cycles += result.cycles;
    requests += result.requests;
    recoveredDirty += result.recoveredDirty;
    if (result.violations.length > 0) {
      failing++;
      const extra = [args.ops !== undefined ? ` --ops ${args.ops}` : '', args.cycles !== undefined ? ` --cycles ${args.cycles}` : '',
        args.canary ? ` --canary ${args.canary}` : '', args.originMiBMax !== undefined ? ` --origin-mib-max ${args.originMiBMax}` : '',
        args.ram !== undefined ? ` --ram ${args.ram}` : ''].join('');
      console.log(`FAIL seed ${seed} (${result.config})`);
      for (const violation of result.violations) console.log(`  ${violation}`);
      console.log(`  replay: node dist/src/testing/sim-main.js --seeds 1 --seed ${seed}${extra}`);
    } else if (args.verbose) {
      console.log(`ok seed ${seed} (${result.config})`);
    }
  }
  const seconds = ((Date.now() - began) / 1000).toFixed(1);
  console.log(`seeds ${start}..${start + args.seeds - 1}: ${args.seeds} run, ${failing} failing, ${cycles} crash cycles, `
    + `${requests} requests, ${recoveredDirty} dirty blocks recovered, ${seconds} s${args.canary ? `, canary ${args.canary}` : ''}`);
  return failing > 0 ? 1 : 0;
}

process.exitCode = await main();
