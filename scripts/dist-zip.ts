// A reproducible zip writer for the Windows archive (krew unpacks zip and
// tar.gz): deflate from node:zlib, CRC-32 from zlib.crc32, a fixed DOS time,
// no extra fields. Layout per PKWARE APPNOTE.TXT 6.3: local headers with
// their data, then the central directory, then the end record. No zip64:
// every entry and the whole archive must stay under 4 GiB.
import { crc32, deflateRawSync } from 'node:zlib';

export interface ZipEntry {
  /** '/'-separated path inside the archive. */
  path: string;
  data: Buffer;
  /** Unix mode kept in the external attributes (ignored on Windows, used by unzip). */
  mode: number;
}

// 1980-01-01 00:00:00, the earliest DOS date: time 0, date (0 << 9) | (1 << 5) | 1.
const DOS_TIME = 0;
const DOS_DATE = 0x21;
const LIMIT = 0xffffffff;

/**
 * The run of fields the local header and the central directory record
 * share, from "version needed" to "extra field length" (APPNOTE 4.3.7, 4.3.12).
 */
function writeEntryFields(buf: Buffer, at: number, crc: number, packed: number, size: number, nameLength: number): void {
  buf.writeUInt16LE(20, at); // version needed: 2.0 (deflate)
  buf.writeUInt16LE(0x0800, at + 2); // flags: names are UTF-8
  buf.writeUInt16LE(8, at + 4); // method: deflate
  buf.writeUInt16LE(DOS_TIME, at + 6);
  buf.writeUInt16LE(DOS_DATE, at + 8);
  buf.writeUInt32LE(crc, at + 10);
  buf.writeUInt32LE(packed, at + 14);
  buf.writeUInt32LE(size, at + 18);
  buf.writeUInt16LE(nameLength, at + 22);
  buf.writeUInt16LE(0, at + 24); // no extra field
}

export function zip(entries: readonly ZipEntry[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.path, 'utf8');
    const packed = deflateRawSync(e.data, { level: 6 });
    const crc = crc32(e.data);
    if (e.data.length >= LIMIT || offset >= LIMIT) throw new Error(`zip: ${e.path} needs zip64, which this writer does not do`);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    writeEntryFields(local, 4, crc, packed.length, e.data.length, name.length);
    parts.push(local, name, packed);

    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, 2.0, so external attrs carry the mode
    writeEntryFields(cd, 6, crc, packed.length, e.data.length, name.length);
    // comment length, disk number, internal attributes: 0
    cd.writeUInt32LE(((0o100000 | (e.mode & 0o7777)) << 16) >>> 0, 38);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);

    offset += local.length + name.length + packed.length;
  }
  const cdBuf = Buffer.concat(central);
  if (offset >= LIMIT) throw new Error('zip: archive needs zip64, which this writer does not do');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBuf, end]);
}
