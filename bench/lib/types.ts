export type PeerId = 'wsrelay' | 'nest-tcp' | 'nest-nats' | 'nest-redis' | 'raw-ws';

export const PEER_IDS: readonly PeerId[] = ['wsrelay', 'nest-tcp', 'nest-nats', 'nest-redis', 'raw-ws'];

export const PEER_LABELS: Readonly<Record<PeerId, string>> = {
  wsrelay: 'wsrelay (ours, via relay)',
  'nest-tcp': 'Nest TCP (direct)',
  'nest-nats': 'Nest NATS (via nats-server)',
  'nest-redis': 'Nest Redis (via redis-server)',
  'raw-ws': 'raw ws relay (practical limit)',
};

export interface Workload {
  id: 'W1' | 'W2' | 'W3' | 'W4' | 'W5';
  title: string;
  kind: 'rpc' | 'events' | 'fanout';
  inflight: number;
  size: number;
  metric: 'rps' | 'mbps' | 'eps';
}

export const WORKLOADS: readonly Workload[] = [
  { id: 'W1', title: '1 in flight, 64 B', kind: 'rpc', inflight: 1, size: 64, metric: 'rps' },
  { id: 'W2', title: '64 in flight, 64 B', kind: 'rpc', inflight: 64, size: 64, metric: 'rps' },
  { id: 'W3', title: '16 in flight, 16 KiB', kind: 'rpc', inflight: 16, size: 16 * 1024, metric: 'mbps' },
  { id: 'W4', title: 'events, 64 B, ≤1000 in flight, 1 subscriber', kind: 'events', inflight: 1000, size: 64, metric: 'eps' },
  { id: 'W5', title: 'fan-out, 64 B, ≤1000 in flight, 8 subscribers', kind: 'fanout', inflight: 1000, size: 64, metric: 'eps' },
];

export const FANOUT_SUBSCRIBERS = 8;

/** W7 runs these RPC workloads on two relays, each both ways. */
export const W7_WORKLOADS: readonly Workload[] = WORKLOADS.filter(w => w.id === 'W1' || w.id === 'W2');

/** W7: client and provider on one relay (B), or the client on relay A and the provider on relay B. */
export type W7Placement = 'same' | 'cross';

export const W7_PLACEMENTS: readonly W7Placement[] = ['same', 'cross'];

export const W7_PLACEMENT_LABELS: Readonly<Record<W7Placement, string>> = {
  same: 'same relay: client and provider on relay B',
  cross: 'cross-relay: client on relay A, provider on relay B',
};

/** One process's share of a measurement window. */
export interface ProcSample {
  /** load | relay | broker | provider | subscribers; W7: load | relay A | relay B | broker | provider */
  role: string;
  /** CPU used in the window, in cores (user + system seconds per second of wall time). */
  cpu: number;
  /** Peak RSS (VmHWM) in KiB; for several processes, the largest. */
  hwmKiB: number;
  /** How many processes this sample adds up (8 for the fan-out subscribers). */
  processes: number;
  /** A broker shared with other users of this machine: its figures are not ours alone. */
  shared?: boolean;
}

/** One workload, one peer, one round. */
export interface Cell {
  /** req/s, MB/s, or delivered events/s (W5: per subscriber, mean of the 8). */
  value: number;
  p50us?: number;
  p99us?: number;
  /** W5: each subscriber's delivered/s. */
  perSubscriber?: number[];
  /** W4/W5: events the publisher sent per second. */
  sentPerSec?: number;
  procs: ProcSample[];
  /** The load generator's own RESULT line. */
  load: Record<string, number>;
  /**
   * The whole machine during the window: % of all CPU time idle and stolen by
   * the hypervisor, and the cores busy outside the watched processes (other
   * programs, plus kernel work not charged to a process, such as loopback softirqs).
   */
  machine: { idlePct: number; stealPct: number; otherCores: number };
  /** W4/W5: each target's count at the start and the end of the window, [n0, epoch ms, n1, epoch ms]. */
  marks?: Array<[number, number, number, number]>;
  /** Why this measurement is not to be trusted (it was then repeated), if so. */
  disturbed?: string;
}

export interface CellError {
  error: string;
}

export interface PeerStatus {
  id: PeerId;
  label: string;
  /** Why the peer did not run, when it did not. */
  skipped?: string;
}

export interface W6Result {
  relay: 'wsrelay' | 'raw-ws';
  requested: number;
  /** Connections attempted: `requested`, lowered to what the relay's open-file limit allows. */
  attempted: number;
  established: number;
  failed: number;
  relayFdLimit: number;
  heartbeatMs: number;
  idleMs: number;
  connectSeconds: number;
  rssBeforeKiB: number;
  rssAfterConnectKiB: number;
  rssAfterIdleKiB: number;
  /** (rssAfterIdle − rssBefore) / established. */
  perConnectionKiB: number;
  /** Relay CPU over the idle window, in % of one core. */
  relayCpuPct: number;
  /** The same, scaled linearly to the default 10 s heartbeat. */
  relayCpuPctAt10s: number;
  generatorCpuPct: number;
  generators: number;
  /** Connections that closed during the idle window, and node pings the relay left unanswered. */
  dropped: number;
  unansweredPings: number;
  relayHwmKiB: number;
}

/** W7: the cluster it ran on and every measurement, by workload and placement (index: round). */
export interface W7Result {
  /** The two relays' ids, the Redis they shared and their channel prefix (this run's only). */
  cluster: { relays: string[]; redis: string; channelPrefix: string };
  raw: Record<string, Record<W7Placement, Array<Cell | CellError>>>;
  /** Measurements that were disturbed and taken again (left out of the statistics). */
  repeated: Array<{ round: number; workload: string; placement: W7Placement; reason: string; cell: Cell }>;
}
