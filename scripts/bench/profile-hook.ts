// Loaded into a broker by the bench (node --import): SIGUSR2 starts a CPU profile of the request thread,
// a second SIGUSR2 writes it to $TESSERA_PROFILE_OUT. The bench starts it once the JIT has warmed, so
// the profile shows the steady state; --cpu-prof would include start-up and every worker thread.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

/** Sampling interval in µs: V8's default, which cost the mint no measurable throughput here. */
const SAMPLING_MICROS = 1_000;

const out = process.env.TESSERA_PROFILE_OUT;
if (out) {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params?: object) =>
    new Promise<T>((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result as T))));
  let running = false;
  process.on('SIGUSR2', () => {
    const next = running
      ? post<{ profile: unknown }>('Profiler.stop').then(({ profile }) => writeFileSync(out, JSON.stringify(profile)))
      : post('Profiler.enable').then(() => post('Profiler.setSamplingInterval', { interval: SAMPLING_MICROS })).then(() => post('Profiler.start'));
    running = !running;
    next.catch((err: unknown) => process.stderr.write(`profile hook: ${String(err)}\n`));
  });
}
