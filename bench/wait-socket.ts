/** Shared by the benchmarks that start `xenballoonctl xenstored` as a child process. */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';

/** Resolves once `path` accepts a connection; fails when the child exits or `ms` pass. */
export async function waitForSocket(path: string, child: ChildProcess, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`xenstored exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(path, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`xenstored did not listen on ${path} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
