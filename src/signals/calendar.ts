import { z } from 'zod';
import { CALENDAR_NAME } from '../policy/index.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const time = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM, 24-hour');

/**
 * A calendar (a change window, a job schedule): weekly windows of weekdays and hours in a time
 * zone. Policies read it as `context.broker.calendars.<name>` (open now or not).
 */
export const calendarSpec = z.strictObject({
  name: z.string().regex(CALENDAR_NAME, 'snake_case, starting with a letter'),
  description: z.string().optional(),
  timezone: z.string().refine((tz) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, 'an IANA time zone such as Europe/Berlin or UTC'),
  windows: z
    .array(z.strictObject({ days: z.array(z.enum(DAYS)).min(1), start: time, end: time }))
    .min(1),
});
export type CalendarSpec = z.infer<typeof calendarSpec>;

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Weekday and minute of day of `at` in `timezone`. */
function localTime(at: Date, timezone: string): { day: (typeof DAYS)[number]; minute: number } {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timezone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return { day: String(parts.weekday).toLowerCase().slice(0, 3) as (typeof DAYS)[number], minute: Number(parts.hour) * 60 + Number(parts.minute) };
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));

/** Whether the calendar is open at `at`. A window whose end is before its start runs past midnight. */
export function calendarOpen(cal: CalendarSpec, at: Date): boolean {
  const { day, minute } = localTime(at, cal.timezone);
  const yesterday = DAYS[(DAYS.indexOf(day) + 6) % 7]!;
  return cal.windows.some((w) => {
    const start = minutes(w.start);
    const end = minutes(w.end);
    if (start < end) return w.days.includes(day) && minute >= start && minute < end;
    return (w.days.includes(day) && minute >= start) || (w.days.includes(yesterday) && minute < end);
  });
}
