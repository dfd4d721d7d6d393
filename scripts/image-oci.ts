// An OCI image layout (image-spec v1.1: image-layout.md, manifest.md,
// config.md) written as one tar, without a registry or a container engine.
// Blobs are content-addressed and every timestamp comes from the caller, so
// the same inputs give the same digests. Pure apart from hashing.
import { createHash } from 'node:crypto';
import { gzip, tar, type TarEntry } from './dist-tar.ts';

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface LayerInput {
  entries: TarEntry[];
  /** What made the layer, for the config's history. */
  createdBy: string;
}

export interface PlatformInput {
  architecture: 'amd64' | 'arm64';
  layers: LayerInput[];
}

export interface ImageInput {
  /** Full reference, e.g. ghcr.io/kubectl-kt/kt-proxy:0.1.0; its tag becomes ref.name. */
  name: string;
  /** Seconds since the epoch, for layer mtimes and `created`. */
  created: number;
  user: string;
  entrypoint: string[];
  env: string[];
  workingDir: string;
  labels: Record<string, string>;
  /** One image per platform, all under one image index (a "multi-arch" image). */
  platforms: PlatformInput[];
}

export interface PlatformImage {
  architecture: string;
  manifestDigest: string;
  configDigest: string;
  /** Compressed layer sizes and uncompressed (diff) sizes, in layer order. */
  layers: { digest: string; size: number; diffId: string; diffSize: number }[];
}

export interface OciImage {
  /** The layout as one tar (oci-layout, index.json, blobs/sha256/…). */
  archive: Buffer;
  /** Digest of the image index: what a registry shows for the tag. */
  digest: string;
  platforms: PlatformImage[];
}

function digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** Splits name:tag at the last colon after the last slash (a registry may carry a port). */
export function splitReference(name: string): { repository: string; tag: string } {
  const colon = name.lastIndexOf(':');
  if (colon <= name.lastIndexOf('/')) throw new Error(`image reference ${JSON.stringify(name)} has no tag`);
  return { repository: name.slice(0, colon), tag: name.slice(colon + 1) };
}

type Put = (data: Buffer) => string;

function createdIso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/** One platform's layers, config and manifest, stored through `put`. */
function platformImage(input: ImageInput, p: PlatformInput, put: Put): PlatformImage & { manifestSize: number } {
  const created = createdIso(input.created);
  const layers = p.layers.map((l) => {
    const raw = tar(l.entries, { mtime: input.created });
    const packed = gzip(raw);
    return { digest: put(packed), size: packed.length, diffId: digest(raw), diffSize: raw.length };
  });
  const config = json({
    created,
    architecture: p.architecture,
    os: 'linux',
    config: {
      User: input.user,
      Entrypoint: input.entrypoint,
      Env: input.env,
      WorkingDir: input.workingDir,
      Labels: input.labels,
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: p.layers.map((l) => ({ created, created_by: l.createdBy })),
  });
  const configDigest = put(config);
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: configDigest, size: config.length },
    layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
    annotations: { 'org.opencontainers.image.created': created, ...input.labels },
  });
  return { architecture: p.architecture, manifestDigest: put(manifest), manifestSize: manifest.length, configDigest, layers };
}

export function ociImage(input: ImageInput): OciImage {
  const blobs = new Map<string, Buffer>();
  const put: Put = (data) => {
    const d = digest(data);
    blobs.set(d, data);
    return d;
  };
  const platforms = input.platforms.map((p) => platformImage(input, p, put));

  // The tag names an image index, which lists one manifest per platform;
  // runtimes pick theirs, `skopeo copy --all` publishes them all.
  const imageIndex = json({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: platforms.map((p) => ({
      mediaType: MEDIA.manifest,
      digest: p.manifestDigest,
      size: p.manifestSize,
      platform: { architecture: p.architecture, os: 'linux' },
    })),
    annotations: { 'org.opencontainers.image.created': createdIso(input.created), ...input.labels },
  });
  const indexDigest = put(imageIndex);

  const { tag } = splitReference(input.name);
  const layoutIndex = json({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [{
      mediaType: MEDIA.index,
      digest: indexDigest,
      size: imageIndex.length,
      annotations: {
        // The tag, as skopeo and umoci look it up (oci-archive:FILE:TAG);
        // containerd and `docker load` read the full name from the second.
        'org.opencontainers.image.ref.name': tag,
        'io.containerd.image.name': input.name,
      },
    }],
  });

  const entries: TarEntry[] = [
    { path: 'oci-layout', type: 'file', mode: 0o644, data: json({ imageLayoutVersion: '1.0.0' }) },
    { path: 'index.json', type: 'file', mode: 0o644, data: layoutIndex },
    { path: 'blobs', type: 'dir', mode: 0o755 },
    { path: 'blobs/sha256', type: 'dir', mode: 0o755 },
    ...[...blobs.keys()].sort().map((d): TarEntry => ({
      path: `blobs/sha256/${d.slice('sha256:'.length)}`, type: 'file', mode: 0o644, data: blobs.get(d),
    })),
  ];
  return {
    archive: tar(entries, { mtime: input.created }),
    digest: indexDigest,
    platforms: platforms.map(({ manifestSize: _, ...p }) => p),
  };
}
