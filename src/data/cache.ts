/**
 * Where the package keeps what it can rebuild (evaluation classifiers, decoded emoji pixels):
 * one folder per user, not the current directory, so runs from different folders share it.
 */
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";

/**
 * Returns the cache folder: $TRANSFUSION_CACHE if set, else $XDG_CACHE_HOME/transfusion, else
 * ~/.cache/transfusion. A relative XDG_CACHE_HOME is ignored, as the XDG spec asks.
 */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TRANSFUSION_CACHE) return resolve(env.TRANSFUSION_CACHE);
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, "transfusion");
  return join(homedir(), ".cache", "transfusion");
}
