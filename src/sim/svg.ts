// Renders a miss-ratio curve as a standalone SVG line chart (hand-written SVG
// text, no dependencies): x = cache size in blocks, y = miss ratio (0..1),
// one polyline per policy, with axes, ticks and a legend.
import { CurvePoint } from './curve.js';

const WIDTH = 720;
const HEIGHT = 440;
const MARGIN_LEFT = 70;
const MARGIN_RIGHT = 160;
const MARGIN_TOP = 40;
const MARGIN_BOTTOM = 60;
const Y_TICKS = 5;
/** Distinguishable on white, colour-blind friendly (Okabe-Ito). */
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

export function curveSvg(points: readonly CurvePoint[], title: string): string {
  const policies = [...new Set(points.map((point) => point.policy))];
  const sizes = [...new Set(points.map((point) => point.cacheBlocks))].sort((a, b) => a - b);
  const plotWidth = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
  const plotHeight = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
  const xMax = Math.max(...sizes);
  const x = (blocks: number): number => MARGIN_LEFT + (xMax === 0 ? 0 : (blocks / xMax) * plotWidth);
  const y = (ratio: number): number => MARGIN_TOP + (1 - ratio) * plotHeight;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    `<line x1="${MARGIN_LEFT}" y1="${y(0)}" x2="${MARGIN_LEFT + plotWidth}" y2="${y(0)}" stroke="black"/>`,
    `<line x1="${MARGIN_LEFT}" y1="${y(0)}" x2="${MARGIN_LEFT}" y2="${MARGIN_TOP}" stroke="black"/>`,
  ];
  for (let tick = 0; tick <= Y_TICKS; tick++) {
    const ratio = tick / Y_TICKS;
    parts.push(`<line x1="${MARGIN_LEFT - 4}" y1="${y(ratio)}" x2="${MARGIN_LEFT + plotWidth}" y2="${y(ratio)}" stroke="#ddd"/>`);
    parts.push(`<text x="${MARGIN_LEFT - 8}" y="${y(ratio) + 4}" text-anchor="end">${ratio.toFixed(1)}</text>`);
  }
  for (const blocks of sizes) {
    parts.push(`<line x1="${x(blocks)}" y1="${y(0)}" x2="${x(blocks)}" y2="${y(0) + 4}" stroke="black"/>`);
    parts.push(`<text x="${x(blocks)}" y="${y(0) + 18}" text-anchor="middle">${blocks}</text>`);
  }
  parts.push(`<text x="${MARGIN_LEFT + plotWidth / 2}" y="${HEIGHT - 18}" text-anchor="middle">cache size (blocks)</text>`);
  parts.push(`<text transform="translate(18 ${MARGIN_TOP + plotHeight / 2}) rotate(-90)" text-anchor="middle">miss ratio</text>`);
  policies.forEach((policy, index) => {
    const colour = COLOURS[index % COLOURS.length]!;
    const line = points
      .filter((point) => point.policy === policy)
      .sort((a, b) => a.cacheBlocks - b.cacheBlocks)
      .map((point) => `${x(point.cacheBlocks).toFixed(1)},${y(point.missRatio).toFixed(1)}`)
      .join(' ');
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${line}"/>`);
    const legendY = MARGIN_TOP + 10 + index * 20;
    parts.push(`<line x1="${WIDTH - MARGIN_RIGHT + 15}" y1="${legendY}" x2="${WIDTH - MARGIN_RIGHT + 40}" y2="${legendY}" stroke="${colour}" stroke-width="2"/>`);
    parts.push(`<text x="${WIDTH - MARGIN_RIGHT + 46}" y="${legendY + 4}">${escapeXml(policy)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
