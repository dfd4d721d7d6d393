// The Node options the plugin runs with, as it ships: the shebang of
// dist/kubectl-kt (scripts/build.ts) and the single executable's execArgv
// (scripts/dist.ts) carry the same list.
//
// --max-semi-space-size=1: V8's young generation grows up to 16 MiB per
// semi-space, and each time it grows the process writes memory it has never
// touched. A command that starts (a mesh join: the Kubernetes client, TLS,
// SSH) touches about 80 MiB in under a second (20k page faults), the
// young generation's growth among it; on a virtual machine whose host backs
// guest memory lazily, a fault on a page never touched costs several times
// what it does on metal. With a 1 MiB young generation the same short-lived objects
// are collected in pages the process already has. Measured on the 20-developer
// mesh test (test/e2e/mesh-twenty.test.ts): a join touched 6.2k instead of
// 7.5k pages, and the join's p95 over three runs was 0.27–0.35 s with it
// against 0.59–0.67 s without, the slow joins (twice the CPU for the same
// work) gone; tunnel throughput (test/bench/tunnel.bench.ts) unchanged,
// 242 vs 244 MiB/s.
export const PLUGIN_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
