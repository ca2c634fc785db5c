import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../util/logger.js';
import { ConfigError } from './errors.js';
import { MAX_CONFIG_BYTES, parseConfig, readConfigText, resolvePaths } from './load.js';
import { isEmptyPlan, type ReloadPlan } from './reload-plan.js';
import type { Config } from './schema.js';
import type { SubstitutionEnv } from './substitute.js';

export const RELOAD_RESULTS = ['applied', 'refused', 'invalid'] as const;
export type ReloadResult = (typeof RELOAD_RESULTS)[number];
export type ReloadTrigger = 'SIGHUP' | 'file-change';

export interface ConfigReloaderOptions {
  /** The config file as given on the command line. */
  file: string;
  logger: Logger;
  /** Applies a valid config unless `needsRestart` in the plan it returns is non-empty (Gateway.applyConfig). */
  apply: (next: Config) => ReloadPlan;
  /** Counts each reload by result (appendcast_config_reloads_total). */
  results: { inc(labels: { result: ReloadResult }, value?: number): void };
  env?: SubstitutionEnv;
  /** Quiet time after the last file event before reading (editors write in several steps). Default 250 ms. */
  debounceMs?: number;
}

/**
 * Reloads the config on SIGHUP and when the file changes. The file's directory is watched, not
 * the file: editors that save by writing a new file and renaming it over the old one replace the
 * inode, which a watch on the file itself would lose; so does swapping the target of a symlink. Reloads run one at a time; events during one
 * queue a single further reload.
 *
 * Each reload is all or nothing: an invalid file, or one that changes a setting read only at start,
 * leaves the running config as it was, and says why in the log (file:line for an invalid one).
 */
export class ConfigReloader {
  private readonly o: Required<Omit<ConfigReloaderOptions, 'env'>> & { env: SubstitutionEnv };
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again: ReloadTrigger | undefined;
  /** The text last reloaded (or started with), whatever the outcome: reloading it again would change nothing. */
  private lastText: string | undefined;
  private closed = false;
  private readonly onSighup = (): void => {
    void this.reload('SIGHUP');
  };

  constructor(options: ConfigReloaderOptions) {
    this.o = { debounceMs: 250, env: process.env, ...options };
    for (const result of RELOAD_RESULTS) this.o.results.inc({ result }, 0);
  }

  /** Starts listening for SIGHUP and watching the file (as it is now: the running config's text). */
  start(): void {
    try {
      this.lastText = statSync(this.o.file).size <= MAX_CONFIG_BYTES ? readFileSync(this.o.file, 'utf8') : undefined;
    } catch {
      this.lastText = undefined; // the first change reloads
    }
    process.on('SIGHUP', this.onSighup);
    try {
      // Any change in the directory, not only to the file's own name: the file may be a symlink
      // whose target is swapped (a Kubernetes ConfigMap swaps `..data`). Reading it is cheap and
      // unchanged text is ignored.
      this.watcher = watch(dirname(this.o.file), { persistent: false }, () => this.debounce());
      this.watcher.on('error', (err) => this.o.logger.warn({ err, file: this.o.file }, 'config file watch failed; reload with SIGHUP'));
    } catch (err) {
      this.o.logger.warn({ err, file: this.o.file }, 'cannot watch the config file; reload with SIGHUP');
    }
  }

  close(): void {
    this.closed = true;
    process.off('SIGHUP', this.onSighup);
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  private debounce(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.reload('file-change'), this.o.debounceMs);
  }

  /** Reloads now (or right after the reload in progress). Resolves once done; never rejects. */
  reload(trigger: ReloadTrigger): Promise<void> {
    if (this.running) {
      // SIGHUP wins over a file event: its reload then logs even when nothing changed.
      if (this.again !== 'SIGHUP') this.again = trigger;
      return this.running;
    }
    this.running = this.once(trigger).catch((err: unknown) => {
      this.o.logger.error({ err, file: this.o.file, trigger }, 'config reload failed');
    }).finally(() => {
      this.running = undefined;
      const next = this.again;
      this.again = undefined;
      if (next && !this.closed) void this.reload(next);
    });
    return this.running;
  }

  private async once(trigger: ReloadTrigger): Promise<void> {
    if (this.closed) return;
    const { file, logger: log } = this.o;
    let text: string;
    try {
      text = await readConfigText(file);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      // Mid-rename, or removed: the next event or SIGHUP tries again. Too large, or a SIGHUP: say so.
      if (trigger === 'file-change' && err.cause !== undefined) return;
      this.invalid(err, trigger);
      return;
    }
    // Unchanged since the last reload (a touch, the second event of one save, a repeated SIGHUP): the
    // same file gives the same answer, so nothing is done or counted.
    if (text === this.lastText) {
      if (trigger === 'SIGHUP') log.info({ file, trigger }, 'config reload: the file is unchanged since the last reload; nothing to do');
      return;
    }
    this.lastText = text;
    let next: Config;
    try {
      next = resolvePaths(parseConfig(text, file, this.o.env));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.invalid(err, trigger);
      return;
    }
    const plan = this.o.apply(next);
    if (plan.needsRestart.length > 0) {
      this.count('refused');
      log.error(
        { file, trigger, needsRestart: plan.needsRestart },
        `config reload refused: ${plan.needsRestart.join(', ')} only take effect on a restart; nothing of this reload was applied (the running config is kept)`,
      );
      return;
    }
    this.count('applied');
    const ids = (list: { id: string }[]) => list.map((s) => s.id);
    log.info(
      {
        file, trigger, started: ids(plan.start), stopped: ids(plan.stop), changed: ids(plan.change.map((c) => c.after)), settings: plan.settings,
        unchanged: isEmptyPlan(plan),
      },
      'config reload applied',
    );
  }

  private invalid(err: ConfigError, trigger: ReloadTrigger): void {
    this.count('invalid');
    // The message lists file:line:column: field: problem, one per line.
    const problems = err.message.split('\n');
    this.o.logger.error({ file: this.o.file, trigger, problems }, `config reload: invalid config, keeping the running one: ${problems.join('; ')}`);
  }

  private count(result: ReloadResult): void {
    this.o.results.inc({ result });
  }
}
