/**
 * Runs the built `vaultpath` command on a pseudo-terminal (through util-linux `script`), so that tests can answer
 * its prompts and press Ctrl-C as a user would. Input is sent only once the expected text has appeared: no timing.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CLI } from './cli.js';

export interface PtyRun {
  /** Everything the terminal showed so far. */
  readonly output: () => string;
  /** Resolves once `text` has appeared after `from` characters of the output; returns where it ends. */
  waitFor(text: string, from?: number): Promise<number>;
  /** Types `data` on the terminal. */
  type(data: string): void;
  /** The command's exit code (printed by the shell around it). */
  readonly exit: Promise<number>;
  /** The pid of the vaultpath process itself (below `script` and its shell), found through /proc. */
  commandPid(): number | undefined;
}

/** The descendants of `pid`, through /proc/<pid>/task/<tid>/children. */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return children.flatMap((c) => [c, ...descendants(c)]);
}

function quote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

export function hasScript(): boolean {
  try {
    return spawn('script', ['--version']).pid !== undefined;
  } catch {
    return false;
  }
}

export function runCliOnTerminal(args: readonly string[], env: Record<string, string> = {}): PtyRun {
  const command = `${quote(process.execPath)} ${quote(CLI)} ${args.map(quote).join(' ')}; echo "EXIT=$?"`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  const watchers: { text: string; from: number; resolve: (end: number) => void }[] = [];
  const check = (): void => {
    for (let i = watchers.length - 1; i >= 0; i--) {
      const w = watchers[i]!;
      const at = out.indexOf(w.text, w.from);
      if (at >= 0) {
        watchers.splice(i, 1);
        w.resolve(at + w.text.length);
      }
    }
  };
  const onData = (c: Buffer): void => {
    out += c.toString('utf8');
    check();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exit = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', () => {
      const m = /EXIT=(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`no exit code; the terminal showed:\n${out}`));
    });
  });
  return {
    output: () => out,
    waitFor(text, from = 0) {
      return new Promise((resolve, reject) => {
        watchers.push({ text, from, resolve });
        check();
        void exit.then(
          () => reject(new Error(`"${text}" never appeared; the terminal showed:\n${out}`)),
          reject,
        );
      });
    },
    type(data) {
      child.stdin.write(data);
    },
    exit,
    commandPid() {
      for (const pid of descendants(child.pid!)) {
        try {
          const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
          if (argv[0] === process.execPath && argv[1] === CLI) return pid;
        } catch {
          // gone already
        }
      }
      return undefined;
    },
  };
}
