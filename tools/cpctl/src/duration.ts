const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "90d", "12h", "30m", "45s" or "0" (never) -> seconds. */
export function parseDuration(text: string): number {
  if (text === "0" || text === "never") return 0;
  const [, count, unit] = /^(\d+)([smhd])$/.exec(text.trim()) ?? [];
  const seconds = unit === undefined ? undefined : UNITS[unit];
  if (count === undefined || seconds === undefined) throw new Error(`invalid duration "${text}": use e.g. 45s, 30m, 12h, 90d, or 0 for never`);
  return Number(count) * seconds;
}
