// What every scenario receives, and what it hands back.
import { Workspace } from '../support/workspace.js';

export interface BenchContext {
  readonly workspace: Workspace;
  /** Measured seconds per fio pattern. */
  readonly runtimeSeconds: number;
  /** Unmeasured seconds before each hot-path pattern. */
  readonly rampSeconds: number;
  /** Unmeasured warm-up seconds before each slow-origin measurement. */
  readonly warmupSeconds: number;
  /**
   * Hot path: rounds per pattern, each running blockcache then the peer; the
   * table shows each side's median round and every round's IOPS ratio.
   */
  readonly repeat: number;
  /** Hot path: run only the patterns whose label contains this (profiling). */
  readonly patternFilter?: string;
  /** Extra node flags for `blockcache serve` (e.g. --cpu-prof). */
  readonly nodeFlags: readonly string[];
  log(line: string): void;
}

export interface ScenarioResult {
  /** Markdown for RESULTS.md. */
  readonly markdown: string;
  /** Plain text for the terminal. */
  readonly text: string;
}
