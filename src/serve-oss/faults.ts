/**
 * Fault injection for `serve-oss` — TEST ONLY, off unless a FaultPlan is given (`--faults`).
 *
 * The chaos suite uses it to prove exactly-once appends: each fault reproduces one way a real OSS
 * request can end, so the client's reconciliation (HEAD, position fence) is exercised on each.
 *
 *   drop-response     the append is applied, then the connection is cut without an answer (ambiguous)
 *   503               503 ServiceUnavailable; nothing applied
 *   500-after-commit  the append is applied, then 500 InternalError
 *   delay             held `delayMs` after the body arrived, then applied and answered — applied even
 *                     if the client gave up meanwhile (only the position fence stops a resend)
 *   delay-no-commit   held `delayMs`, then the connection is cut; nothing applied
 *   reset-mid-body    part of the request body is read, then the connection is cut; nothing applied
 *
 * Faults act at the store boundary: the operation runs as usual over a store wrapper whose one
 * faulted call (append for AppendObject, head for HEAD/GET) misbehaves, so every other behaviour is
 * the real handler's. For HEAD and GET "applied" just means the store was consulted.
 *
 * Which requests get a fault: `rules` (chosen: the nth matching request) take precedence over
 * `random` (each eligible request draws from a PRNG seeded with `seed`: the same seed and request
 * order give the same faults).
 *
 * Control endpoints (only while a plan is set; they need no signature): `GET /_appendcast/faults`
 * answers stats() as JSON, `POST /_appendcast/outage?ms=N` starts OssLocalServer.outage(N).
 * `_appendcast` is not a valid bucket name, so these paths never shadow a bucket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppendcastError, ErrorCode } from '../errors.js';
import type { Logger } from '../util/logger.js';
import type { AppendableStore } from '../store/types.js';
import type { OperationContext } from './handlers.js';
import { OssHttpError } from './oss-http-error.js';
import { prng } from '../util/prng.js';

export const FAULT_KINDS = ['drop-response', '503', '500-after-commit', 'delay', 'delay-no-commit', 'reset-mid-body'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FAULT_OPS = ['append', 'head', 'get'] as const;
/** append = AppendObject; head = HeadObject / GetObjectMeta; get = GetObject. Other requests are never faulted. */
export type FaultOp = (typeof FAULT_OPS)[number];

/** Default hold of `delay`: longer than the client's default 15 s headers timeout. */
export const DEFAULT_FAULT_DELAY_MS = 20_000;

export interface FaultRule {
  op: FaultOp;
  /** A string matches the decoded key exactly; a RegExp is tested against it. Omitted: any key. */
  key?: RegExp | string;
  /** 1-based: fire on the nth request matching op and key (counted per rule). Omitted: on every one. */
  nth?: number;
  fault: FaultKind;
}

export interface RandomFaults {
  /** Probability in [0, 1] that an eligible request gets a fault. */
  rate: number;
  /** Drawn uniformly; must not be empty. */
  faults: readonly FaultKind[];
  seed: number;
  /** Eligible operations; default ['append']. */
  ops?: readonly FaultOp[];
}

export interface FaultPlan {
  rules?: readonly FaultRule[];
  random?: RandomFaults;
  /** Hold of `delay` and `delay-no-commit`; default DEFAULT_FAULT_DELAY_MS. */
  delayMs?: number;
}

export interface FaultStats {
  /** Requests the plan was consulted for, per operation. */
  seen: Record<FaultOp, number>;
  /** Faults that fired, per kind. */
  injected: Record<FaultKind, number>;
  /** Of those, how many reached the store (the append was applied). */
  committed: Record<FaultKind, number>;
  totalInjected: number;
  /** Outages started through this injector's server. */
  outages: number;
}

export interface FaultEvent {
  /** 1-based index of the request among those the plan was consulted for. */
  seq: number;
  op: FaultOp;
  key: string;
  fault: FaultKind;
}

/** A fault plan that does not make sense (unknown kind, rate outside [0, 1], …). */
export class FaultPlanError extends AppendcastError {
  constructor(message: string) {
    super(ErrorCode.ConfigInvalid, `fault plan: ${message}`);
  }
}

/** Thrown through the handler to make run() cut the connection instead of answering. */
class DropConnection extends Error {
  constructor() {
    super('fault injection: connection dropped');
    this.name = 'DropConnection';
  }
}

const MAX_EVENTS = 10_000;

function isKind(v: unknown): v is FaultKind {
  return typeof v === 'string' && (FAULT_KINDS as readonly string[]).includes(v);
}

function isOp(v: unknown): v is FaultOp {
  return typeof v === 'string' && (FAULT_OPS as readonly string[]).includes(v);
}

/** Throws FaultPlanError unless `plan` is usable. */
export function validateFaultPlan(plan: FaultPlan): void {
  for (const [i, r] of (plan.rules ?? []).entries()) {
    if (!isOp(r.op)) throw new FaultPlanError(`rules[${i}].op must be one of ${FAULT_OPS.join(', ')}`);
    if (!isKind(r.fault)) throw new FaultPlanError(`rules[${i}].fault must be one of ${FAULT_KINDS.join(', ')}`);
    if (r.nth !== undefined && (!Number.isSafeInteger(r.nth) || r.nth < 1)) throw new FaultPlanError(`rules[${i}].nth must be a positive integer`);
  }
  const rnd = plan.random;
  if (rnd !== undefined) {
    if (!(typeof rnd.rate === 'number' && rnd.rate >= 0 && rnd.rate <= 1)) throw new FaultPlanError('random.rate must be a number in [0, 1]');
    if (rnd.faults.length === 0 || !rnd.faults.every(isKind)) throw new FaultPlanError(`random.faults must be a non-empty list of ${FAULT_KINDS.join(', ')}`);
    if (!Number.isSafeInteger(rnd.seed)) throw new FaultPlanError('random.seed must be an integer');
    if (rnd.ops !== undefined && (rnd.ops.length === 0 || !rnd.ops.every(isOp))) throw new FaultPlanError(`random.ops must be a non-empty list of ${FAULT_OPS.join(', ')}`);
  }
  if (plan.delayMs !== undefined && (!Number.isSafeInteger(plan.delayMs) || plan.delayMs < 0)) {
    throw new FaultPlanError('delayMs must be a non-negative integer');
  }
}

/** Which faultable operation a request is, if any (mirrors route.ts). */
function faultOpOf(method: string | undefined, key: string, query: ReadonlyMap<string, string>): FaultOp | undefined {
  if (key === '') return undefined;
  if (method === 'POST' && query.has('append')) return 'append';
  if (method === 'HEAD') return 'head';
  if (method === 'GET') return 'get';
  return undefined;
}

function zeros<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

export class FaultInjector {
  readonly #rules: ReadonlyArray<FaultRule>;
  readonly #ruleCounts: number[];
  readonly #random: RandomFaults | undefined;
  readonly #randomOps: ReadonlySet<FaultOp>;
  readonly #next: () => number;
  readonly #delayMs: number;
  #stop = new AbortController();
  readonly #seen = zeros(FAULT_OPS);
  readonly #injected = zeros(FAULT_KINDS);
  readonly #committed = zeros(FAULT_KINDS);
  readonly #events: FaultEvent[] = [];
  #seq = 0;
  #outages = 0;

  constructor(plan: FaultPlan) {
    validateFaultPlan(plan);
    this.#rules = [...(plan.rules ?? [])];
    this.#ruleCounts = this.#rules.map(() => 0);
    this.#random = plan.random;
    this.#randomOps = new Set(plan.random?.ops ?? ['append']);
    this.#next = prng(plan.random?.seed ?? 0);
    this.#delayMs = plan.delayMs ?? DEFAULT_FAULT_DELAY_MS;
  }

  get delayMs(): number {
    return this.#delayMs;
  }

  /** The plan in JSON-safe form, for the start-up warning (a run is reproduced from it). */
  summary(): Record<string, unknown> {
    return {
      rules: this.#rules.map((r) => ({ ...r, key: r.key instanceof RegExp ? String(r.key) : r.key })),
      random: this.#random,
      delayMs: this.#delayMs,
    };
  }

  /**
   * The fault for the next request (op, key), or undefined. Advances the rule counters and the PRNG,
   * so call it exactly once per request, in arrival order. run() calls it; tests may call it directly.
   */
  decide(op: FaultOp, key: string): FaultKind | undefined {
    this.#seen[op]++;
    this.#seq++;
    let fault: FaultKind | undefined;
    for (const [i, rule] of this.#rules.entries()) {
      if (rule.op !== op || !keyMatches(rule.key, key)) continue;
      const count = ++this.#ruleCounts[i]!;
      if (fault === undefined && (rule.nth === undefined || rule.nth === count)) fault = rule.fault;
    }
    if (this.#random !== undefined && this.#randomOps.has(op)) {
      // Always two draws per eligible request, so the sequence depends only on the request order.
      const hit = this.#next() < this.#random.rate;
      const pick = this.#random.faults[Math.floor(this.#next() * this.#random.faults.length)]!;
      if (fault === undefined && hit) fault = pick;
    }
    return fault;
  }

  stats(): FaultStats {
    const totalInjected = Object.values(this.#injected).reduce((a, b) => a + b, 0);
    return { seen: { ...this.#seen }, injected: { ...this.#injected }, committed: { ...this.#committed }, totalInjected, outages: this.#outages };
  }

  /** Faults that fired, oldest first (the last 10,000). */
  events(): FaultEvent[] {
    return [...this.#events];
  }

  noteOutage(): void {
    this.#outages++;
  }

  /** Ends pending delays at once (their requests are cut, nothing applied): the server is closing. */
  dispose(): void {
    this.#stop.abort();
    this.#stop = new AbortController();
  }

  /** Runs `operation` for the request, with the fault the plan picks for it (most often none). */
  async run(ctx: OperationContext, operation: (ctx: OperationContext) => Promise<void>): Promise<void> {
    const op = faultOpOf(ctx.req.method, ctx.key, ctx.query);
    const fault = op === undefined ? undefined : this.decide(op, ctx.key);
    if (op === undefined || fault === undefined) return operation(ctx);
    const seq = this.#seq;
    const fired = (): void => {
      this.#injected[fault]++;
      this.#events.push({ seq, op, key: ctx.key, fault });
      if (this.#events.length > MAX_EVENTS) this.#events.shift();
    };
    if (fault === 'reset-mid-body') {
      fired();
      await resetMidBody(ctx.req, ctx.res);
      return;
    }
    const store = this.#faultyStore(ctx.store, op, fault, fired);
    try {
      await operation({ ...ctx, store });
    } catch (err) {
      if (!(err instanceof DropConnection)) throw err;
      ctx.res.destroy();
    }
  }

  /** `inner` with the one call that `op` starts with (append, or head) doing `fault`. */
  #faultyStore(inner: AppendableStore, op: FaultOp, fault: Exclude<FaultKind, 'reset-mid-body'>, fired: () => void): AppendableStore {
    const around = async <T>(call: () => Promise<T>): Promise<T> => {
      fired();
      switch (fault) {
        case '503':
          throw new OssHttpError(503, 'ServiceUnavailable', 'Service is temporarily unavailable (injected fault). Please try again.');
        case 'delay':
        case 'delay-no-commit':
          try {
            await sleep(this.#delayMs, undefined, { signal: this.#stop.signal, ref: false });
          } catch {
            throw new DropConnection(); // disposed: the server is closing
          }
          if (fault === 'delay-no-commit') throw new DropConnection();
          break;
        default:
          break;
      }
      const result = await call();
      this.#committed[fault]++;
      if (fault === 'drop-response') throw new DropConnection();
      if (fault === '500-after-commit') throw new OssHttpError(500, 'InternalError', 'We encountered an internal error. Please try again.');
      return result;
    };
    const faulty: AppendableStore = {
      kind: inner.kind,
      append: (...a) => inner.append(...a),
      head: (...a) => inner.head(...a),
      read: (...a) => inner.read(...a),
      put: (...a) => inner.put(...a),
      delete: (...a) => inner.delete(...a),
      list: (...a) => inner.list(...a),
      close: () => inner.close(),
    };
    let armed = true;
    // Only the first call of the faulted method misbehaves (GET calls head, then read).
    const once = <T>(call: () => Promise<T>): Promise<T> => {
      if (!armed) return call();
      armed = false;
      return around(call);
    };
    if (op === 'append') faulty.append = (...a) => once(() => inner.append(...a));
    else faulty.head = (...a) => once(() => inner.head(...a));
    return faulty;
  }
}

function keyMatches(pattern: RegExp | string | undefined, key: string): boolean {
  if (pattern === undefined) return true;
  if (typeof pattern === 'string') return pattern === key;
  pattern.lastIndex = 0; // a /g or /y pattern would otherwise remember the last match
  return pattern.test(key);
}

/** Reads about half of the announced body (at least one chunk), then cuts the connection. */
async function resetMidBody(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const announced = Number(req.headers['content-length'] ?? 0);
  if (Number.isFinite(announced) && announced > 0 && !req.complete) {
    const want = Math.ceil(announced / 2);
    await new Promise<void>((done) => {
      let got = 0;
      const finish = (): void => {
        req.off('data', onData).off('end', finish).off('error', finish).off('close', finish);
        req.pause();
        done();
      };
      const onData = (chunk: Buffer): void => {
        got += chunk.byteLength;
        if (got >= want) finish();
      };
      req.on('data', onData).once('end', finish).once('error', finish).once('close', finish);
    });
  }
  res.destroy();
}

// ------------------------------------------------------------------------------------------------
// Control endpoints
// ------------------------------------------------------------------------------------------------

export const FAULT_CONTROL_PREFIX = '/_appendcast/';

export function isFaultControlPath(url: string): boolean {
  return url.startsWith(FAULT_CONTROL_PREFIX);
}

/** Longest outage the control endpoint accepts (keeps a typo from taking a test server down for good). */
const MAX_OUTAGE_MS = 10 * 60_000;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(payload.byteLength) });
  res.end(payload);
}

/**
 * Serves `GET /_appendcast/faults` and `POST /_appendcast/outage?ms=N` (202, then the outage starts
 * once the answer is written). Anything else under the prefix: 404.
 */
export function serveFaultControl(
  req: IncomingMessage,
  res: ServerResponse,
  injector: FaultInjector,
  outage: (ms: number) => Promise<void>,
  log?: Logger,
): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === `${FAULT_CONTROL_PREFIX}faults` && req.method === 'GET') {
    sendJson(res, 200, { ...injector.stats(), events: injector.events() });
    return;
  }
  if (url.pathname === `${FAULT_CONTROL_PREFIX}outage` && req.method === 'POST') {
    const raw = url.searchParams.get('ms') ?? '';
    const ms = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
    if (!(ms <= MAX_OUTAGE_MS)) {
      sendJson(res, 400, { error: `ms must be an integer in [0, ${MAX_OUTAGE_MS}]` });
      return;
    }
    req.resume();
    res.once('finish', () => {
      outage(ms).catch((err: unknown) => log?.error({ err }, 'serve-oss: outage failed; the server may stay down'));
    });
    sendJson(res, 202, { outageMs: ms });
    return;
  }
  sendJson(res, 404, { error: 'unknown fault control endpoint' });
}

// ------------------------------------------------------------------------------------------------
// Command-line spec
// ------------------------------------------------------------------------------------------------

function kindList(raw: string, where: string): FaultKind[] {
  const kinds = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = kinds.find((k) => !isKind(k));
  if (bad !== undefined || kinds.length === 0) {
    throw new FaultPlanError(`${where}: ${bad === undefined ? 'no fault kinds' : `unknown fault ${JSON.stringify(bad)}`}; kinds are ${FAULT_KINDS.join(', ')}`);
  }
  return kinds as FaultKind[];
}

function fromJson(text: string): FaultPlan {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new FaultPlanError(`not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const obj = (x: unknown, where: string): Record<string, unknown> => {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new FaultPlanError(`${where} must be an object`);
    return x as Record<string, unknown>;
  };
  const only = (o: Record<string, unknown>, allowed: string[], where: string): void => {
    const extra = Object.keys(o).find((k) => !allowed.includes(k));
    if (extra !== undefined) throw new FaultPlanError(`${where}: unknown field ${JSON.stringify(extra)}`);
  };
  const top = obj(v, 'the plan');
  only(top, ['rules', 'random', 'delayMs'], 'the plan');
  const plan: FaultPlan = {};
  if (top['rules'] !== undefined) {
    if (!Array.isArray(top['rules'])) throw new FaultPlanError('rules must be a list');
    plan.rules = top['rules'].map((x: unknown, i): FaultRule => {
      const r = obj(x, `rules[${i}]`);
      only(r, ['op', 'key', 'keyRegExp', 'nth', 'fault'], `rules[${i}]`);
      if (r['key'] !== undefined && r['keyRegExp'] !== undefined) throw new FaultPlanError(`rules[${i}]: give key or keyRegExp, not both`);
      const rule = { op: r['op'], fault: r['fault'] } as FaultRule;
      if (typeof r['key'] === 'string') rule.key = r['key'];
      else if (r['key'] !== undefined) throw new FaultPlanError(`rules[${i}].key must be a string`);
      if (typeof r['keyRegExp'] === 'string') {
        try {
          rule.key = new RegExp(r['keyRegExp']);
        } catch {
          throw new FaultPlanError(`rules[${i}].keyRegExp is not a valid regular expression`);
        }
      } else if (r['keyRegExp'] !== undefined) throw new FaultPlanError(`rules[${i}].keyRegExp must be a string`);
      if (r['nth'] !== undefined) rule.nth = r['nth'] as number;
      return rule;
    });
  }
  if (top['random'] !== undefined) {
    const r = obj(top['random'], 'random');
    only(r, ['rate', 'faults', 'seed', 'ops'], 'random');
    if (!Array.isArray(r['faults'])) throw new FaultPlanError('random.faults must be a list');
    if (r['ops'] !== undefined && !Array.isArray(r['ops'])) throw new FaultPlanError('random.ops must be a list');
    plan.random = {
      rate: r['rate'] as number,
      faults: r['faults'] as FaultKind[],
      seed: (r['seed'] ?? 1) as number,
      ...(r['ops'] !== undefined ? { ops: r['ops'] as FaultOp[] } : {}),
    };
  }
  if (top['delayMs'] !== undefined) plan.delayMs = top['delayMs'] as number;
  return plan;
}

/**
 * The plan `--faults` describes: JSON (a FaultPlan, with `keyRegExp: "…"` for a RegExp key and seed
 * defaulting to 1), or a short spec of `;`-separated items:
 *   rate=R:kind,kind,…   random faults on appends (seed 1 unless `--fault-seed`)
 *   nth=N:kind           the Nth append (any key) gets `kind`
 * e.g. `rate=0.05:drop-response,503,500-after-commit,delay,reset-mid-body`. `{}` enables only the
 * control endpoints.
 */
export function parseFaultSpec(spec: string): FaultPlan {
  const text = spec.trim();
  const plan = text.startsWith('{') ? fromJson(text) : fromShortSpec(text);
  validateFaultPlan(plan);
  return plan;
}

function fromShortSpec(text: string): FaultPlan {
  const rules: FaultRule[] = [];
  let random: RandomFaults | undefined;
  const items = text.split(';').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new FaultPlanError('empty spec');
  for (const item of items) {
    const m = /^(rate|nth)=([^:]+):(.*)$/.exec(item);
    if (m === null) throw new FaultPlanError(`cannot read ${JSON.stringify(item)}: expected rate=R:kind,… or nth=N:kind`);
    const [, name, value, kinds] = m as unknown as [string, 'rate' | 'nth', string, string];
    if (name === 'rate') {
      if (random !== undefined) throw new FaultPlanError('rate= given twice');
      const rate = /^\d*\.?\d+$/.test(value) ? Number(value) : NaN;
      random = { rate, faults: kindList(kinds, item), seed: 1 };
    } else {
      const nth = /^\d+$/.test(value) ? Number(value) : NaN;
      const [fault, ...more] = kindList(kinds, item);
      if (more.length > 0) throw new FaultPlanError(`${item}: nth= takes one fault kind`);
      rules.push({ op: 'append', nth, fault: fault! });
    }
  }
  return { ...(rules.length > 0 ? { rules } : {}), ...(random !== undefined ? { random } : {}) };
}
