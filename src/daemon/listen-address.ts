/**
 * `--metrics ADDR:PORT`, parsed without loading prom-client: the daemon loads its metrics
 * module only when metrics are served.
 */

/** Parses `ADDR:PORT` (`127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`). */
export function parseListenAddress(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: (m[1] ?? m[2]) as string, port };
}
