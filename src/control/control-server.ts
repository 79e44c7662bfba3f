// The control endpoint: HTTP over a Unix socket (mode 0600) for a running
// server. GET /status (CONTRACT.md's JSON), GET /metrics (Prometheus text),
// POST /flush (writes every dirty block back; answers when none is left).
// Routes are registered by name, so later layers (settings) add their own.
import * as fs from 'node:fs';
import * as http from 'node:http';
import { BlockcacheError } from '../stdx/errors.js';

/** `signal` aborts when the client goes away before the answer is sent (long operations stop early). */
export type RouteHandler = (request: http.IncomingMessage, body: string, signal: AbortSignal) => Promise<{ status?: number; type?: string; body: string }>;

/** Largest request body accepted (settings are a few bytes). */
const CONTROL_BODY_BYTES_MAX = 64 * 1024;

export class ControlServer {
  private readonly routes = new Map<string, RouteHandler>();
  private readonly server: http.Server;

  private constructor(readonly socketPath: string) {
    this.server = http.createServer((request, response) => void this.handle(request, response));
  }

  static async start(socketPath: string, routes: Record<string, RouteHandler>): Promise<ControlServer> {
    const control = new ControlServer(socketPath);
    for (const [key, handler] of Object.entries(routes)) control.routes.set(key, handler);
    removeStaleSocket(socketPath);
    const previous = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        control.server.once('error', reject);
        control.server.listen(socketPath, () => resolve());
      });
    } catch (error) {
      throw new BlockcacheError('BAD_ARGUMENT', `cannot listen on control socket ${socketPath}: ${(error as Error).message}`);
    } finally {
      process.umask(previous);
    }
    return control;
  }

  route(key: string, handler: RouteHandler): void {
    this.routes.set(key, handler);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try { fs.unlinkSync(this.socketPath); } catch { /* already gone */ }
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const handler = this.routes.get(`${request.method} ${url.pathname}`);
    let body = '';
    const abort = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) abort.abort();
    });
    try {
      body = await readBody(request);
      if (!handler) {
        const known = [...this.routes.keys()].join(', ');
        return send(response, 404, 'application/json', JSON.stringify({ error: `no route ${request.method} ${url.pathname} (known: ${known})` }));
      }
      const result = await handler(request, body, abort.signal);
      send(response, result.status ?? 200, result.type ?? 'application/json', result.body);
    } catch (error) {
      const status = error instanceof BlockcacheError && error.code === 'BAD_ARGUMENT' ? 400 : 500;
      send(response, status, 'application/json', JSON.stringify({ error: (error as Error).message }));
    }
  }
}

function send(response: http.ServerResponse, status: number, type: string, body: string): void {
  if (response.headersSent) return;
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

function readBody(request: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > CONTROL_BODY_BYTES_MAX) {
        reject(new BlockcacheError('BAD_ARGUMENT', 'request body too large'));
        request.destroy();
      } else chunks.push(chunk);
    });
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function removeStaleSocket(socketPath: string): void {
  try {
    if (fs.statSync(socketPath).isSocket()) fs.unlinkSync(socketPath);
  } catch { /* nothing there */ }
}

/** Client side: one HTTP request to a control socket. */
export function controlRequest(socketPath: string, method: string, route: string, body?: string, timeoutMs = 0): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const type = body?.trimStart().startsWith('{') ? 'application/json' : 'text/plain';
    const request = http.request({ socketPath, method, path: route, headers: body ? { 'content-type': type } : {} }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    if (timeoutMs > 0) request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? 'no blockcache server is listening there' : error.message;
      reject(new BlockcacheError('DEVICE_OPEN', `control socket ${socketPath}: ${reason}`));
    });
    request.end(body);
  });
}
