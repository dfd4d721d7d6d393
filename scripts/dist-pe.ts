// Removes the Authenticode signature from a PE file, as `signtool remove /s`
// does: Node's SEA docs remove it before injecting, since injection changes
// the bytes the signature covers and leaves a signature that fails to verify.
// The certificate table is data directory 4 (IMAGE_DIRECTORY_ENTRY_SECURITY);
// its "address" is a file offset, and the table sits at the end of the file
// (Microsoft PE/COFF specification, "The Attribute Certificate Table").

const PE32_PLUS = 0x20b;
const PE32 = 0x10b;
const SECURITY_DIRECTORY = 4;

interface Offsets {
  /** The optional header's CheckSum field. */
  checksum: number;
  /** The certificate table's data directory entry (offset, size). */
  security: number;
}

function offsets(pe: Buffer): Offsets {
  const peOff = pe.readUInt32LE(0x3c);
  if (pe.toString('latin1', peOff, peOff + 4) !== 'PE\0\0') throw new Error('PE: no PE signature at e_lfanew');
  const opt = peOff + 24;
  const magic = pe.readUInt16LE(opt);
  // Data directories follow the optional header's fixed part: 96 bytes in PE32, 112 in PE32+.
  const dirs = opt + (magic === PE32_PLUS ? 112 : magic === PE32 ? 96 : NaN);
  if (Number.isNaN(dirs)) throw new Error(`PE: unknown optional header magic 0x${magic.toString(16)}`);
  return { checksum: opt + 64, security: dirs + SECURITY_DIRECTORY * 8 };
}

/** The certificate table's [offset, size], [0, 0] when unsigned. */
export function certificateTable(pe: Buffer): [offset: number, size: number] {
  const { security } = offsets(pe);
  return [pe.readUInt32LE(security), pe.readUInt32LE(security + 4)];
}

/**
 * The image checksum as imagehlp's CheckSumMappedFile computes it: 16-bit
 * one's-complement-style sum of the file with the CheckSum field read as 0,
 * plus the file length.
 */
export function peChecksum(pe: Buffer): number {
  const skip = offsets(pe).checksum;
  let sum = 0;
  const even = pe.length & ~1;
  for (let i = 0; i < even; i += 2) {
    if (i === skip || i === skip + 2) continue;
    sum += pe[i] | (pe[i + 1] << 8);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (pe.length & 1) {
    sum += pe[pe.length - 1];
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ((sum & 0xffff) + pe.length) >>> 0;
}

export function storedChecksum(pe: Buffer): number {
  return pe.readUInt32LE(offsets(pe).checksum);
}

/** Writes the correct CheckSum into `pe` (injection leaves the base binary's). */
export function fixChecksum(pe: Buffer): Buffer {
  pe.writeUInt32LE(peChecksum(pe), offsets(pe).checksum);
  return pe;
}

/** A copy of `pe` without its signature; the input itself when it has none. */
export function removeAuthenticode(pe: Buffer): Buffer {
  const [offset, size] = certificateTable(pe);
  if (offset === 0 && size === 0) return pe;
  // The table is 8-byte aligned and may be followed only by padding.
  if (offset + size > pe.length || pe.subarray(offset + size).some((b) => b !== 0)) {
    throw new Error('PE: the certificate table is not at the end of the file; refusing to cut it');
  }
  const out = Buffer.from(pe.subarray(0, offset));
  const { security } = offsets(out);
  out.writeUInt32LE(0, security);
  out.writeUInt32LE(0, security + 4);
  return fixChecksum(out);
}
