// The release archive writers and the executable-header reader, checked
// against the system's own tar and unzip (the tools users unpack with) and
// against real node binaries.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { identify, SEA_FUSE } from '../../scripts/dist-format.ts';
import { parseLdd, parseReadelf } from '../../scripts/image-libs.ts';
import { certificateTable, peChecksum, removeAuthenticode, storedChecksum } from '../../scripts/dist-pe.ts';
import { archiveName, findTarget, TARGETS } from '../../scripts/dist-targets.ts';
import { gzip, tar } from '../../scripts/dist-tar.ts';
import { zip } from '../../scripts/dist-zip.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kt-dist-unit-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const binary = Buffer.from('#!/bin/sh\necho hello from the archive\n');
const license = Buffer.from('Apache License\n'.repeat(100));

describe('tar writer', () => {
  test('GNU tar reads modes, owners, mtime and contents back', () => {
    const file = join(dir, 'a.tar.gz');
    writeFileSync(file, gzip(tar([
      { path: 'kubectl-kt', type: 'file', mode: 0o755, data: binary },
      { path: 'LICENSE', type: 'file', mode: 0o644, data: license },
      { path: 'etc', type: 'dir', mode: 0o755 },
      { path: 'tmp', type: 'dir', mode: 0o1777 },
      { path: 'etc/passwd', type: 'file', mode: 0o644, data: Buffer.from('x\n'), uid: 65532, gid: 65532 },
      { path: 'lib64/ld.so', type: 'symlink', mode: 0o777, linkname: '../lib/ld.so' },
    ], { mtime: 1_700_000_000 })));
    const listing = execFileSync('tar', ['-tvzf', file, '--numeric-owner', '--full-time'], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    const lines = listing.trim().split('\n');
    assert.equal(lines.length, 6);
    assert.match(lines[0], /^-rwxr-xr-x 0\/0 +\d+ 2023-11-14 22:13:20 kubectl-kt$/);
    assert.match(lines[1], /^-rw-r--r-- 0\/0 +1500 2023-11-14 22:13:20 LICENSE$/);
    assert.match(lines[3], /^drwxrwxrwt 0\/0 +0 .* tmp\/$/);
    assert.match(lines[4], /^-rw-r--r-- 65532\/65532 +2 .* etc\/passwd$/);
    assert.match(lines[5], /^lrwxrwxrwx 0\/0 +0 .* lib64\/ld.so -> \.\.\/lib\/ld.so$/);
    const out = join(dir, 'x');
    execFileSync('mkdir', ['-p', out]);
    execFileSync('tar', ['-xzf', file, '-C', out]);
    assert.deepEqual(readFileSync(join(out, 'kubectl-kt')), binary);
    assert.equal(statSync(join(out, 'kubectl-kt')).mode & 0o777, 0o755);
    assert.equal(execFileSync(join(out, 'kubectl-kt'), { encoding: 'utf8' }), 'hello from the archive\n');
  });

  test('paths over 100 bytes go to the ustar prefix field', () => {
    const long = `blobs/sha256/${'a'.repeat(64)}/${'b'.repeat(60)}`;
    const file = join(dir, 'long.tar');
    writeFileSync(file, tar([{ path: long, type: 'file', mode: 0o644, data: Buffer.from('x') }], { mtime: 0 }));
    assert.equal(execFileSync('tar', ['-tf', file], { encoding: 'utf8' }), `${long}\n`);
  });

  test('same input, same bytes', () => {
    const make = (): Buffer => gzip(tar([{ path: 'f', type: 'file', mode: 0o644, data: license }], { mtime: 5 }));
    assert.deepEqual(make(), make());
    assert.notDeepEqual(make(), gzip(tar([{ path: 'f', type: 'file', mode: 0o644, data: license }], { mtime: 6 })));
  });
});

describe('zip writer', () => {
  test('unzip tests the CRCs and extracts the same bytes and modes', () => {
    const file = join(dir, 'a.zip');
    const bytes = zip([
      { path: 'kubectl-kt.exe', data: binary, mode: 0o755 },
      { path: 'LICENSE', data: license, mode: 0o644 },
    ]);
    writeFileSync(file, bytes);
    assert.match(execFileSync('unzip', ['-t', file], { encoding: 'utf8' }), /No errors detected/);
    const listing = execFileSync('unzip', ['-Z', file], { encoding: 'utf8' });
    assert.match(listing, /-rwxr-xr-x .* kubectl-kt\.exe/);
    assert.match(listing, /-rw-r--r-- .* LICENSE/);
    assert.deepEqual(execFileSync('unzip', ['-p', file, 'LICENSE']), license);
    assert.deepEqual(zip([{ path: 'LICENSE', data: license, mode: 0o644 }]), zip([{ path: 'LICENSE', data: license, mode: 0o644 }]));
  });

  test('a corrupted archive fails unzip -t (the check above can fail)', () => {
    const bytes = zip([{ path: 'LICENSE', data: license, mode: 0o644 }]);
    bytes[40] ^= 0xff; // inside the deflated data
    const file = join(dir, 'bad.zip');
    writeFileSync(file, bytes);
    assert.throws(() => execFileSync('unzip', ['-t', file], { stdio: 'pipe' }));
  });
});

describe('executable headers', () => {
  test('the host node binary is x86-64 ELF without an injected SEA blob', () => {
    const info = identify(readFileSync(process.execPath));
    assert.equal(info.format, 'elf');
    assert.equal(info.machine, 0x3e);
    assert.equal(info.arch, 'amd64');
    assert.equal(info.seaInjected, false);
  });

  test('synthetic ELF, Mach-O and PE headers give the right CPU', () => {
    const elf = Buffer.alloc(64);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[4] = 2;
    elf[5] = 1;
    elf.writeUInt16LE(0xb7, 0x12);
    assert.deepEqual(identify(elf), { format: 'elf', arch: 'arm64', machine: 0xb7, seaInjected: false });

    const macho = Buffer.alloc(32 + 72 + 16);
    macho.writeUInt32LE(0xfeedfacf, 0);
    macho.writeUInt32LE(0x0100000c, 4);
    macho.writeUInt32LE(2, 16);
    macho.writeUInt32LE(0x19, 32);
    macho.writeUInt32LE(72, 36);
    macho.write('NODE_SEA', 40, 'latin1');
    macho.writeUInt32LE(0x1d, 104);
    macho.writeUInt32LE(16, 108);
    const m = identify(Buffer.concat([macho, Buffer.from(`${SEA_FUSE}:1`)]));
    assert.deepEqual(m, { format: 'macho', arch: 'arm64', machine: 0x0100000c, seaInjected: true, segments: ['NODE_SEA'], codeSignature: true });

    const pe = Buffer.alloc(0x100);
    pe.write('MZ', 0, 'latin1');
    pe.writeUInt32LE(0x80, 0x3c);
    pe.write('PE\0\0', 0x80, 'latin1');
    pe.writeUInt16LE(0x8664, 0x84);
    assert.deepEqual(identify(pe), { format: 'pe', arch: 'amd64', machine: 0x8664, seaInjected: false });
    pe.write('XX', 0x80, 'latin1');
    assert.throws(() => identify(pe), /no PE signature/);
    assert.throws(() => identify(Buffer.alloc(100)), /not an ELF/);
  });
});

/** A minimal PE32+ file: headers, 0x200 bytes of "code", then a certificate table. */
function signedPe(): Buffer {
  const pe = Buffer.alloc(0x400);
  pe.write('MZ', 0, 'latin1');
  pe.writeUInt32LE(0x80, 0x3c);
  pe.write('PE\0\0', 0x80, 'latin1');
  pe.writeUInt16LE(0x8664, 0x84);
  pe.writeUInt16LE(0x20b, 0x98); // optional header magic at e_lfanew + 24
  pe.fill(0xab, 0x200, 0x300);
  pe.fill(0xcd, 0x300, 0x3f8); // the "signature"
  pe.writeUInt32LE(0x300, 0x98 + 112 + 4 * 8);
  pe.writeUInt32LE(0xf8, 0x98 + 112 + 4 * 8 + 4);
  return pe;
}

describe('PE signature removal', () => {
  test('cuts the certificate table, clears its directory entry and writes a valid checksum', () => {
    const pe = signedPe();
    assert.deepEqual(certificateTable(pe), [0x300, 0xf8]);
    const out = removeAuthenticode(pe);
    assert.equal(out.length, 0x300);
    assert.deepEqual(certificateTable(out), [0, 0]);
    assert.equal(storedChecksum(out), peChecksum(out));
    assert.notEqual(storedChecksum(out), 0);
    assert.deepEqual(out.subarray(0x200, 0x300), pe.subarray(0x200, 0x300));
    assert.equal(removeAuthenticode(out), out, 'an unsigned file is returned as is');
  });

  test('refuses when something other than padding follows the table', () => {
    const pe = signedPe();
    pe.writeUInt32LE(0xf0, 0x98 + 112 + 4 * 8 + 4);
    pe[0x3f5] = 1;
    assert.throws(() => removeAuthenticode(pe), /not at the end of the file/);
  });

  test('the checksum is the 16-bit folded sum plus the length, skipping the CheckSum field', () => {
    const pe = signedPe();
    const before = peChecksum(pe);
    pe.writeUInt32LE(0x12345678, 0x98 + 64);
    assert.equal(peChecksum(pe), before, 'the stored checksum does not count');
    pe[0x250] ^= 1;
    assert.notEqual(peChecksum(pe), before);
  });
});

describe('image library lists', () => {
  test('ldd: resolved paths and the loader, not the vdso; a missing library is an error', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f00)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f01)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f02)',
    ].join('\n');
    assert.deepEqual(parseLdd(out), ['/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
    assert.throws(() => parseLdd('\tlibfoo.so.1 => not found'), /libfoo\.so\.1 => not found/);
  });

  test('readelf: NEEDED entries and the interpreter', () => {
    const dynamic = ' 0x0000000000000001 (NEEDED)             Shared library: [libm.so.6]\n 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]\n';
    const headers = '      [Requesting program interpreter: /lib/ld-linux-aarch64.so.1]\n';
    assert.deepEqual(parseReadelf(dynamic, headers), { needed: ['libm.so.6', 'libc.so.6'], interpreter: '/lib/ld-linux-aarch64.so.1' });
    assert.deepEqual(parseReadelf('', ''), { needed: [], interpreter: null });
  });
});

describe('targets', () => {
  test('archive names follow <name>_<version>_<os>_<arch> and are unique', () => {
    const names = TARGETS.map((t) => archiveName('1.2.3', t));
    assert.equal(new Set(names).size, TARGETS.length);
    assert.equal(archiveName('1.2.3', findTarget('win-x64')), 'kubectl-kt_1.2.3_windows_amd64.zip');
    assert.equal(archiveName('1.2.3', findTarget('darwin-arm64')), 'kubectl-kt_1.2.3_darwin_arm64.tar.gz');
    assert.throws(() => findTarget('plan9-mips'), /unknown target/);
  });
});
