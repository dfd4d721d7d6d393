// Reads just enough of an executable's header to say what it is: ELF,
// Mach-O or PE, which CPU, and whether Node's SEA blob was injected. The
// release script checks every binary with it before archiving, and the tests
// use it for the binaries this host cannot run.
// ELF: System V gABI ch. 4 (e_machine at 0x12). Mach-O: <mach-o/loader.h>.
// PE: Microsoft PE/COFF specification (e_lfanew at 0x3c, Machine after "PE\0\0").
import type { Arch, BinaryFormat } from './dist-targets.ts';

export interface BinaryInfo {
  format: BinaryFormat;
  arch: Arch | 'other';
  /** The raw CPU field: e_machine, cputype or Machine. */
  machine: number;
  /** Node flips this fuse when it injects the SEA blob (…:0 in a plain node). */
  seaInjected: boolean;
  /** Mach-O only: segment names, in load-command order. */
  segments?: string[];
  /** Mach-O only: whether an LC_CODE_SIGNATURE load command is present. */
  codeSignature?: boolean;
}

/** The sentinel Node's SEA uses; postject and --build-sea both flip its last byte. */
export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const EM_X86_64 = 0x3e;
const EM_AARCH64 = 0xb7;
const CPU_TYPE_X86_64 = 0x01000007;
const CPU_TYPE_ARM64 = 0x0100000c;
const IMAGE_FILE_MACHINE_AMD64 = 0x8664;
const IMAGE_FILE_MACHINE_ARM64 = 0xaa64;
const LC_SEGMENT_64 = 0x19;
const LC_CODE_SIGNATURE = 0x1d;

function seaInjected(buf: Buffer): boolean {
  return buf.includes(`${SEA_FUSE}:1`);
}

function elf(buf: Buffer): BinaryInfo {
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error('ELF: expected 64-bit little-endian');
  const machine = buf.readUInt16LE(0x12);
  const arch = machine === EM_X86_64 ? 'amd64' : machine === EM_AARCH64 ? 'arm64' : 'other';
  return { format: 'elf', arch, machine, seaInjected: seaInjected(buf) };
}

function macho(buf: Buffer): BinaryInfo {
  const machine = buf.readUInt32LE(4);
  const arch = machine === CPU_TYPE_X86_64 ? 'amd64' : machine === CPU_TYPE_ARM64 ? 'arm64' : 'other';
  const ncmds = buf.readUInt32LE(16);
  const segments: string[] = [];
  let codeSignature = false;
  let off = 32; // sizeof(mach_header_64)
  for (let i = 0; i < ncmds; i++) {
    const cmd = buf.readUInt32LE(off);
    const size = buf.readUInt32LE(off + 4);
    if (cmd === LC_SEGMENT_64) segments.push(buf.toString('latin1', off + 8, off + 24).replace(/\0+$/, ''));
    if (cmd === LC_CODE_SIGNATURE) codeSignature = true;
    if (size < 8) throw new Error('Mach-O: malformed load command');
    off += size;
  }
  return { format: 'macho', arch, machine, seaInjected: seaInjected(buf), segments, codeSignature };
}

function pe(buf: Buffer): BinaryInfo {
  const peOff = buf.readUInt32LE(0x3c);
  if (buf.toString('latin1', peOff, peOff + 4) !== 'PE\0\0') throw new Error('PE: no PE signature at e_lfanew');
  const machine = buf.readUInt16LE(peOff + 4);
  const arch = machine === IMAGE_FILE_MACHINE_AMD64 ? 'amd64' : machine === IMAGE_FILE_MACHINE_ARM64 ? 'arm64' : 'other';
  return { format: 'pe', arch, machine, seaInjected: seaInjected(buf) };
}

export function identify(buf: Buffer): BinaryInfo {
  if (buf.length >= 64 && buf.readUInt32BE(0) === 0x7f454c46) return elf(buf);
  if (buf.length >= 32 && buf.readUInt32LE(0) === 0xfeedfacf) return macho(buf);
  if (buf.length >= 64 && buf.toString('latin1', 0, 2) === 'MZ') return pe(buf);
  throw new Error('not an ELF, 64-bit Mach-O or PE executable');
}
