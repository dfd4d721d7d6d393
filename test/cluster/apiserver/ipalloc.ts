// ClusterIP and NodePort allocation. Pure: the caller passes the addresses in
// use (read from the store), so there is no allocator state to keep in sync.
// Like the real allocator (KEP-3070), the low band of the range is kept for
// addresses asked for by name (kube-dns at .10) and dynamic ones come from above it.

export interface Cidr {
  base: number;
  bits: number;
  size: number;
}

export function ipToInt(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): Cidr {
  const [ip, bitsStr] = cidr.split('/');
  const addr = ipToInt(ip);
  const bits = Number(bitsStr);
  if (addr === undefined || !Number.isInteger(bits) || bits < 8 || bits > 30) throw new Error(`invalid service CIDR ${cidr}`);
  const size = 2 ** (32 - bits);
  const base = (addr & ~(size - 1)) >>> 0;
  return { base, bits, size };
}

export type IpCheck = { ok: true } | { ok: false; message: string };

/** Whether `ip` may be given as a Service's clusterIP (in range, not network/broadcast, free). */
export function checkRequestedIp(cidr: string, ip: string, taken: Set<string>): IpCheck {
  const c = parseCidr(cidr);
  const n = ipToInt(ip);
  if (n === undefined) return { ok: false, message: `must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)` };
  if (n <= c.base || n >= c.base + c.size - 1) {
    return { ok: false, message: `failed to allocate IP ${ip}: the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${intToIp(c.base)}/${c.bits}` };
  }
  if (taken.has(ip)) return { ok: false, message: `failed to allocate IP ${ip}: provided IP is already allocated` };
  return { ok: true };
}

/** The next free address above the reserved low band (wrapping into it when the rest is full). */
export function allocateIp(cidr: string, taken: Set<string>): string | undefined {
  const c = parseCidr(cidr);
  const usable = c.size - 2;
  const reserved = Math.min(Math.max(16, Math.floor(c.size / 16)), 256);
  const start = usable > reserved * 2 ? reserved + 1 : 1;
  for (let i = 0; i < usable; i++) {
    const off = 1 + ((start - 1 + i) % usable);
    const ip = intToIp(c.base + off);
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}

export const NODE_PORT_RANGE = { min: 30000, max: 32767 };

export function allocateNodePort(taken: Set<number>): number | undefined {
  for (let p = NODE_PORT_RANGE.min; p <= NODE_PORT_RANGE.max; p++) if (!taken.has(p)) return p;
  return undefined;
}
