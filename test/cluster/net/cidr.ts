// IPv4 address math for the pod and service ranges. Pure: no I/O.

export interface Cidr {
  base: number;
  bits: number;
}

export function ipToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    const v = Number(p);
    if (!/^\d{1,3}$/.test(p) || v > 255) throw new Error(`not an IPv4 address: ${ip}`);
    n = n * 256 + v;
  }
  return n;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): Cidr {
  const [addr, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (!Number.isInteger(bits) || bits < 8 || bits > 30) throw new Error(`unsupported CIDR: ${cidr}`);
  const size = 2 ** (32 - bits);
  const base = ipToInt(addr);
  return { base: base - (base % size), bits };
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.bits);
}

/** The n-th address of the range (n = 1 is the first host address). */
export function nthAddress(cidr: string, n: number): string {
  const c = parseCidr(cidr);
  if (n < 0 || n >= cidrSize(c)) throw new Error(`${n} is outside ${cidr}`);
  return intToIp(c.base + n);
}

export function contains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const v = ipToInt(ip);
  return v >= c.base && v < c.base + cidrSize(c);
}

/**
 * Hands out host addresses of a range, skipping the reserved ones (the
 * gateway). Like the host-local IPAM plugin it continues after the last
 * address it gave, so a just-released address is not handed out again at
 * once (other pods may still hold a neighbour entry for it).
 */
export class IpAllocator {
  private readonly cidr: Cidr;
  private readonly used = new Set<number>();
  private last = 0;

  constructor(cidr: string, reserved: string[] = []) {
    this.cidr = parseCidr(cidr);
    for (const r of reserved) this.used.add(ipToInt(r));
  }

  allocate(): string {
    // .0 is the network and the last address the broadcast address.
    const hosts = cidrSize(this.cidr) - 2;
    for (let k = 1; k <= hosts; k++) {
      const i = ((this.last + k - 1) % hosts) + 1;
      const v = this.cidr.base + i;
      if (!this.used.has(v)) {
        this.used.add(v);
        this.last = i;
        return intToIp(v);
      }
    }
    throw new Error('pod address range exhausted');
  }

  release(ip: string): void {
    this.used.delete(ipToInt(ip));
  }
}
