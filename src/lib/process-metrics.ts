import { constants, PerformanceObserver, performance, type NodeGCPerformanceDetail, type PerformanceEntry } from 'node:perf_hooks';
import { metrics } from './metrics.js';

// The process's own health under the names Prometheus' client libraries use (process_*, nodejs_*),
// so existing dashboards and alerts work. CPU and memory are read at each scrape; the event loop's
// delay and the GC pauses are recorded as they happen, into histograms, which any number of
// scrapers can read without resetting anything.

const cpu = (part: 'user' | 'system' | 'both') => () => {
  const { user, system } = process.cpuUsage();
  return (part === 'user' ? user : part === 'system' ? system : user + system) / 1e6;
};
metrics.sampled('process_cpu_user_seconds_total', 'User CPU time spent by the process, in seconds.', 'counter', cpu('user'));
metrics.sampled('process_cpu_system_seconds_total', 'System CPU time spent by the process, in seconds.', 'counter', cpu('system'));
metrics.sampled('process_cpu_seconds_total', 'User and system CPU time spent by the process, in seconds.', 'counter', cpu('both'));
const startedAt = performance.timeOrigin / 1000;
metrics.sampled('process_start_time_seconds', 'When the process started, in seconds since the epoch.', 'gauge', () => startedAt);
metrics.sampled('process_resident_memory_bytes', 'Resident memory of the process, in bytes.', 'gauge', () => process.memoryUsage.rss());
metrics.sampled('nodejs_heap_size_used_bytes', 'V8 heap in use, in bytes.', 'gauge', () => process.memoryUsage().heapUsed);
metrics.sampled('nodejs_heap_size_total_bytes', 'V8 heap allocated, in bytes.', 'gauge', () => process.memoryUsage().heapTotal);
metrics.sampled('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript (buffers, wasm), in bytes.', 'gauge', () => process.memoryUsage().external);

/** How often the event loop is sampled. A timer this often costs a few microseconds of CPU a second. */
export const LOOP_SAMPLE_MS = 20;

/**
 * How late a timer due every LOOP_SAMPLE_MS fired: the time a request arriving then waited before the
 * broker could look at it. Long synchronous work (a big JSON body, a slow GC, a CPU-starved machine)
 * shows here as the tail of request latency does.
 */
export const loopDelay = metrics.histogram(
  'nodejs_eventloop_delay_seconds',
  `How late a timer due every ${LOOP_SAMPLE_MS} ms ran: time the event loop was busy or the process was not scheduled.`,
  [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
);

/** GC pauses by kind (minor: scavenge of the young generation; major: mark-compact). */
export const gcDuration = metrics.histogram('nodejs_gc_duration_seconds', 'Garbage collection pauses, by kind.', [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]);

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

let watchers = 0;
let timer: NodeJS.Timeout | undefined;
let gcObserver: PerformanceObserver | undefined;

function sampleLoop(due: number): void {
  timer = setTimeout(() => {
    const now = performance.now();
    loopDelay.observe(Math.max(0, now - due) / 1000);
    sampleLoop(now + LOOP_SAMPLE_MS);
  }, LOOP_SAMPLE_MS);
  // The sampler never keeps a process alive that has nothing else to do.
  timer.unref();
}

/**
 * Starts recording the event loop's delay and GC pauses, once per process however many brokers run in
 * it (tests run several); the returned function stops it when the last of them is done.
 */
export function watchProcess(): () => void {
  if (watchers++ === 0) {
    sampleLoop(performance.now() + LOOP_SAMPLE_MS);
    gcObserver = new PerformanceObserver((list) => {
      // A gc entry carries its NodeGCPerformanceDetail in `detail`, which the PerformanceEntry type leaves out.
      for (const e of list.getEntries()) {
        const detail = (e as PerformanceEntry & { detail?: NodeGCPerformanceDetail }).detail;
        gcDuration.observe(e.duration / 1000, { kind: GC_KINDS[detail?.kind ?? -1] ?? 'other' });
      }
    });
    gcObserver.observe({ entryTypes: ['gc'] });
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--watchers > 0) return;
    clearTimeout(timer);
    gcObserver?.disconnect();
  };
}
