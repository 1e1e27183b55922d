import { readFileSync, readdirSync } from 'node:fs';

/** Linux reports process CPU time in clock ticks; 100 per second on every mainstream kernel config. */
const CLOCK_TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat after the command name (which is in parentheses and may hold spaces). */
function statFields(pid: number, file = `/proc/${pid}/stat`): string[] {
  const stat = readFileSync(file, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU seconds of one thread of `pid` (its main thread when `tid` is `pid`). */
export function threadCpuSeconds(pid: number, tid = pid): number {
  const f = statFields(pid, `/proc/${pid}/task/${tid}/stat`);
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS_PER_SECOND;
}

/**
 * Seconds one thread of `pid` has spent runnable but waiting for a core (the second field of its
 * schedstat, in nanoseconds): time it had work and no CPU. NaN where the kernel keeps no schedstat.
 */
export function threadWaitSeconds(pid: number, tid = pid): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return NaN;
  }
}

/** User + system CPU seconds of `pid`; with `reaped`, plus those of its children that have exited. */
export function processCpuSeconds(pid: number, reaped = false): number {
  const f = statFields(pid);
  // utime, stime, cutime, cstime are fields 14–17 of stat, 12–15 after the name.
  const ticks = Number(f[11]) + Number(f[12]) + (reaped ? Number(f[13]) + Number(f[14]) : 0);
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** Direct children of `pid`, read from /proc (Linux). */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(statFields(Number(entry))[1]) === pid) children.push(Number(entry));
    } catch {
      // the process ended while /proc was being read
    }
  }
  return children;
}

/** CPU seconds of a process tree: the root with its reaped children, plus its live children. */
export function treeCpuSeconds(root: number): number {
  let total = processCpuSeconds(root, true);
  for (const child of childrenOf(root)) {
    try {
      total += processCpuSeconds(child);
    } catch {
      // exited between the listing and the read: its time is in the root's reaped total
    }
  }
  return total;
}

/** The whole machine's CPU seconds so far: busy (not idle or iowait) and stolen by the hypervisor. */
export function machineCpuSeconds(): { busy: number; steal: number } {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number) as number[];
  return { busy: (user! + nice! + system! + irq! + softirq!) / CLOCK_TICKS_PER_SECOND, steal: steal! / CLOCK_TICKS_PER_SECOND };
}
