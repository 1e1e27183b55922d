import { describe, expect, it } from 'vitest';
import { calendarOpen, calendarSpec, type CalendarSpec } from '../../src/signals/calendar.js';

type Day = CalendarSpec['windows'][number]['days'][number];

/** A calendar with one window, parsed as the config loader would (so the spec shape is checked too). */
function cal(timezone: string, days: Day[], start: string, end: string): CalendarSpec {
  return calendarSpec.parse({ name: 'window', timezone, windows: [{ days, start, end }] });
}

const open = (c: CalendarSpec, iso: string) => calendarOpen(c, new Date(iso));

/** The minutes in [from, from + count) at which the calendar is open, as ISO strings. */
function openMinutes(c: CalendarSpec, fromIso: string, count: number): string[] {
  const from = Date.parse(fromIso);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const at = new Date(from + i * 60_000);
    if (calendarOpen(c, at)) out.push(at.toISOString());
  }
  return out;
}

describe('calendarOpen: hours are read in the calendar time zone', () => {
  const berlin = cal('Europe/Berlin', ['mon', 'tue', 'wed', 'thu', 'fri'], '09:00', '17:00');

  it('in summer (CEST, UTC+2): 07:30Z is 09:30 local (open), 16:30Z is 18:30 local (closed)', () => {
    // Wednesday 2024-07-03. Read in UTC, these two would come out the other way round.
    expect(open(berlin, '2024-07-03T07:30:00Z')).toBe(true);
    expect(open(berlin, '2024-07-03T16:30:00Z')).toBe(false);
    expect(open(berlin, '2024-07-03T06:30:00Z')).toBe(false); // 08:30 local
    expect(open(berlin, '2024-07-03T14:30:00Z')).toBe(true); // 16:30 local
  });

  it('in winter (CET, UTC+1): the offset is one hour, not two', () => {
    // Wednesday 2024-01-10.
    expect(open(berlin, '2024-01-10T07:30:00Z')).toBe(false); // 08:30 local (09:30 with a summer offset)
    expect(open(berlin, '2024-01-10T08:30:00Z')).toBe(true); // 09:30 local
    expect(open(berlin, '2024-01-10T15:30:00Z')).toBe(true); // 16:30 local (17:30 with a summer offset)
    expect(open(berlin, '2024-01-10T16:30:00Z')).toBe(false); // 17:30 local
  });

  it('reads minutes too, in a zone with a half-hour offset (Asia/Kolkata, UTC+5:30)', () => {
    const kolkata = cal('Asia/Kolkata', ['wed'], '09:00', '17:00');
    expect(open(kolkata, '2024-07-03T03:29:00Z')).toBe(false); // 08:59 local
    expect(open(kolkata, '2024-07-03T03:30:00Z')).toBe(true); // 09:00 local
    expect(open(kolkata, '2024-07-03T11:29:00Z')).toBe(true); // 16:59 local
    expect(open(kolkata, '2024-07-03T11:30:00Z')).toBe(false); // 17:00 local
  });

  it('keeps calendars in different zones apart when evaluated at the same instant', () => {
    const tokyo = cal('Asia/Tokyo', ['mon', 'tue', 'wed', 'thu', 'fri'], '09:00', '17:00');
    const at = '2024-07-03T01:00:00Z'; // 03:00 in Berlin, 10:00 in Tokyo
    for (let i = 0; i < 3; i++) {
      expect(open(berlin, at)).toBe(false);
      expect(open(tokyo, at)).toBe(true);
    }
  });
});

describe('calendarOpen: window boundaries (start inclusive, end exclusive, to the minute)', () => {
  const berlin = cal('Europe/Berlin', ['wed'], '09:00', '17:00');

  it('is closed one minute (and one second) before the start and open exactly at the start', () => {
    expect(open(berlin, '2024-07-03T06:59:00Z')).toBe(false); // 08:59 local
    expect(open(berlin, '2024-07-03T06:59:59.999Z')).toBe(false);
    expect(open(berlin, '2024-07-03T07:00:00Z')).toBe(true); // 09:00 local
  });

  it('is open through the last minute before the end and closed exactly at the end', () => {
    expect(open(berlin, '2024-07-03T14:59:00Z')).toBe(true); // 16:59 local
    expect(open(berlin, '2024-07-03T14:59:59.999Z')).toBe(true);
    expect(open(berlin, '2024-07-03T15:00:00Z')).toBe(false); // 17:00 local
  });

  it('is open for exactly the window length on the day (480 minutes of 09:00-17:00)', () => {
    const minutes = openMinutes(berlin, '2024-07-02T22:00:00Z', 24 * 60); // Wednesday 00:00-24:00 local
    expect(minutes).toHaveLength(8 * 60);
    expect(minutes[0]).toBe('2024-07-03T07:00:00.000Z');
    expect(minutes.at(-1)).toBe('2024-07-03T14:59:00.000Z');
  });

  it('reads local midnight as minute 0 (a window from 00:00 opens at midnight)', () => {
    const early = cal('Europe/Berlin', ['mon'], '00:00', '06:00');
    expect(open(early, '2024-07-01T22:00:00Z')).toBe(false); // Tue 00:00 local
    expect(open(early, '2024-06-30T22:00:00Z')).toBe(true); // Mon 00:00 local
    expect(open(early, '2024-06-30T21:59:00Z')).toBe(false); // Sun 23:59 local
    expect(open(early, '2024-07-01T03:59:00Z')).toBe(true); // Mon 05:59 local
    expect(open(early, '2024-07-01T04:00:00Z')).toBe(false); // Mon 06:00 local
  });

  it('treats an end of 00:00 as midnight at the end of the day', () => {
    const evening = cal('UTC', ['fri'], '18:00', '00:00');
    expect(open(evening, '2024-07-05T17:59:00Z')).toBe(false);
    expect(open(evening, '2024-07-05T18:00:00Z')).toBe(true);
    expect(open(evening, '2024-07-05T23:59:00Z')).toBe(true);
    expect(open(evening, '2024-07-06T00:00:00Z')).toBe(false); // Saturday 00:00
    expect(open(evening, '2024-07-05T00:00:00Z')).toBe(false); // Friday 00:00 is not in Thursday's window
  });

  it('is open if any window is (several windows, as in the demo change window)', () => {
    const demo = calendarSpec.parse({
      name: 'change_window',
      timezone: 'Europe/Berlin',
      windows: [
        { days: ['mon', 'tue', 'wed', 'thu'], start: '08:00', end: '18:00' },
        { days: ['fri'], start: '08:00', end: '14:00' },
      ],
    });
    expect(open(demo, '2024-07-04T15:59:00Z')).toBe(true); // Thu 17:59 local
    expect(open(demo, '2024-07-05T11:59:00Z')).toBe(true); // Fri 13:59 local
    expect(open(demo, '2024-07-05T12:00:00Z')).toBe(false); // Fri 14:00 local
    expect(open(demo, '2024-07-05T15:59:00Z')).toBe(false); // Fri 17:59 local: the Mon-Thu hours do not apply
  });
});

describe('calendarOpen: a window that crosses midnight', () => {
  // Friday night 22:00 to Saturday 02:00, Berlin summer time (UTC+2).
  const night = cal('Europe/Berlin', ['fri'], '22:00', '02:00');

  it('is open at 23:00 on the listed day and at 01:00 the next morning, closed at 03:00', () => {
    expect(open(night, '2024-07-05T21:00:00Z')).toBe(true); // Fri 23:00 local
    expect(open(night, '2024-07-05T23:00:00Z')).toBe(true); // Sat 01:00 local (still Friday in UTC)
    expect(open(night, '2024-07-06T01:00:00Z')).toBe(false); // Sat 03:00 local
  });

  it('opens exactly at the start and closes exactly at the end, the next day', () => {
    expect(open(night, '2024-07-05T19:59:00Z')).toBe(false); // Fri 21:59 local
    expect(open(night, '2024-07-05T20:00:00Z')).toBe(true); // Fri 22:00 local
    expect(open(night, '2024-07-05T22:00:00Z')).toBe(true); // Sat 00:00 local
    expect(open(night, '2024-07-05T23:59:00Z')).toBe(true); // Sat 01:59 local
    expect(open(night, '2024-07-06T00:00:00Z')).toBe(false); // Sat 02:00 local
  });

  it('belongs to the night that starts on a listed day, not to the one that ends on it', () => {
    expect(open(night, '2024-07-04T23:00:00Z')).toBe(false); // Fri 01:00 local: Thursday night
    expect(open(night, '2024-07-04T21:00:00Z')).toBe(false); // Thu 23:00 local
    expect(open(night, '2024-07-06T21:00:00Z')).toBe(false); // Sat 23:00 local
    expect(open(night, '2024-07-06T23:00:00Z')).toBe(false); // Sun 01:00 local
  });

  it('is open for four hours in the week, all of them Friday night', () => {
    const minutes = openMinutes(night, '2024-06-30T22:00:00Z', 7 * 24 * 60); // Mon 2024-07-01 00:00 local, one week
    expect(minutes).toHaveLength(4 * 60);
    expect(minutes[0]).toBe('2024-07-05T20:00:00.000Z');
    expect(minutes.at(-1)).toBe('2024-07-05T23:59:00.000Z');
  });

  it('wraps from Sunday night into Monday morning', () => {
    const sunday = cal('UTC', ['sun'], '22:00', '02:00');
    expect(open(sunday, '2024-07-07T23:00:00Z')).toBe(true); // Sun 23:00
    expect(open(sunday, '2024-07-08T01:00:00Z')).toBe(true); // Mon 01:00
    expect(open(sunday, '2024-07-08T02:00:00Z')).toBe(false); // Mon 02:00
    expect(open(sunday, '2024-07-07T01:00:00Z')).toBe(false); // Sun 01:00: Saturday night
  });

  it('runs a window whose start equals its end for 24 hours from the start (current behaviour)', () => {
    const wholeDay = cal('UTC', ['sat'], '00:00', '00:00');
    expect(open(wholeDay, '2024-07-05T23:59:00Z')).toBe(false); // Fri 23:59
    expect(open(wholeDay, '2024-07-06T00:00:00Z')).toBe(true); // Sat 00:00
    expect(open(wholeDay, '2024-07-06T23:59:00Z')).toBe(true); // Sat 23:59
    expect(open(wholeDay, '2024-07-07T00:00:00Z')).toBe(false); // Sun 00:00

    const dayFromNine = cal('UTC', ['sat'], '09:00', '09:00');
    expect(open(dayFromNine, '2024-07-06T08:59:00Z')).toBe(false);
    expect(open(dayFromNine, '2024-07-06T09:00:00Z')).toBe(true);
    expect(open(dayFromNine, '2024-07-07T08:59:00Z')).toBe(true); // Sun 08:59
    expect(open(dayFromNine, '2024-07-07T09:00:00Z')).toBe(false);
  });
});

describe('calendarOpen: the weekday is the local one', () => {
  it('Monday in UTC but still Sunday in America/Los_Angeles counts as Sunday', () => {
    const at = '2024-06-03T03:00:00Z'; // Mon 03:00 UTC = Sun 2024-06-02 20:00 PDT
    expect(open(cal('America/Los_Angeles', ['sun'], '18:00', '22:00'), at)).toBe(true);
    expect(open(cal('America/Los_Angeles', ['mon'], '18:00', '22:00'), at)).toBe(false);
    expect(open(cal('America/Los_Angeles', ['mon'], '00:00', '23:59'), at)).toBe(false);
  });

  it('Sunday in UTC but already Monday in Asia/Tokyo counts as Monday', () => {
    const at = '2024-06-02T20:00:00Z'; // Sun 20:00 UTC = Mon 2024-06-03 05:00 JST
    expect(open(cal('Asia/Tokyo', ['mon'], '04:00', '06:00'), at)).toBe(true);
    expect(open(cal('Asia/Tokyo', ['sun'], '00:00', '23:59'), at)).toBe(false);
  });

  it('a night window crossing local midnight takes "yesterday" in local time', () => {
    // Sat 2024-06-01 22:00 PDT to Sun 02:00 PDT; 2024-06-02T08:30Z is Sun 01:30 PDT (Sunday in UTC too,
    // but "yesterday" must be Saturday local, and 08:30 UTC is outside 22:00-02:00 if read in UTC).
    const lateSat = cal('America/Los_Angeles', ['sat'], '22:00', '02:00');
    expect(open(lateSat, '2024-06-02T08:30:00Z')).toBe(true);
    expect(open(lateSat, '2024-06-02T05:30:00Z')).toBe(true); // Sat 22:30 PDT
    expect(open(lateSat, '2024-06-02T09:00:00Z')).toBe(false); // Sun 02:00 PDT
  });
});

describe('calendarOpen: daylight saving transition days', () => {
  it('Berlin spring forward (Sun 2024-03-31, 02:00 CET -> 03:00 CEST): business hours move with the clock', () => {
    const sat = cal('Europe/Berlin', ['sat'], '09:00', '17:00');
    expect(open(sat, '2024-03-30T07:30:00Z')).toBe(false); // Sat 08:30 CET
    expect(open(sat, '2024-03-30T08:00:00Z')).toBe(true); // Sat 09:00 CET

    const sun = cal('Europe/Berlin', ['sun'], '09:00', '17:00');
    expect(open(sun, '2024-03-31T06:59:00Z')).toBe(false); // Sun 08:59 CEST
    expect(open(sun, '2024-03-31T07:00:00Z')).toBe(true); // Sun 09:00 CEST (08:00 if still on CET)
    expect(open(sun, '2024-03-31T14:59:00Z')).toBe(true); // 16:59 CEST
    expect(open(sun, '2024-03-31T15:00:00Z')).toBe(false); // 17:00 CEST
  });

  it('Berlin spring forward: a window over the gap lasts one hour less, and one inside the gap never opens', () => {
    const overGap = cal('Europe/Berlin', ['sun'], '01:00', '04:00');
    expect(open(overGap, '2024-03-31T00:59:00Z')).toBe(true); // 01:59 CET
    expect(open(overGap, '2024-03-31T01:00:00Z')).toBe(true); // 03:00 CEST
    expect(open(overGap, '2024-03-31T02:00:00Z')).toBe(false); // 04:00 CEST
    expect(openMinutes(overGap, '2024-03-30T23:00:00Z', 23 * 60)).toHaveLength(2 * 60); // the 23-hour day

    const inGap = cal('Europe/Berlin', ['sun'], '02:00', '03:00');
    expect(openMinutes(inGap, '2024-03-30T23:00:00Z', 23 * 60)).toEqual([]);
    expect(openMinutes(inGap, '2024-04-06T22:00:00Z', 24 * 60)).toHaveLength(60); // the next Sunday, as usual
  });

  it('Berlin fall back (Sun 2024-10-27, 03:00 CEST -> 02:00 CET): the repeated hour is open twice', () => {
    const repeated = cal('Europe/Berlin', ['sun'], '02:00', '03:00');
    expect(open(repeated, '2024-10-26T23:59:00Z')).toBe(false); // 01:59 CEST
    expect(open(repeated, '2024-10-27T00:00:00Z')).toBe(true); // 02:00 CEST
    expect(open(repeated, '2024-10-27T00:59:00Z')).toBe(true); // 02:59 CEST
    expect(open(repeated, '2024-10-27T01:00:00Z')).toBe(true); // 02:00 CET, again
    expect(open(repeated, '2024-10-27T01:59:00Z')).toBe(true); // 02:59 CET
    expect(open(repeated, '2024-10-27T02:00:00Z')).toBe(false); // 03:00 CET
    expect(openMinutes(repeated, '2024-10-26T22:00:00Z', 25 * 60)).toHaveLength(120); // the 25-hour day

    const business = cal('Europe/Berlin', ['sun'], '09:00', '17:00');
    expect(open(business, '2024-10-27T07:30:00Z')).toBe(false); // 08:30 CET (09:30 if still on CEST)
    expect(open(business, '2024-10-27T08:00:00Z')).toBe(true); // 09:00 CET
    expect(open(business, '2024-10-27T16:00:00Z')).toBe(false); // 17:00 CET
  });

  it('Los Angeles spring forward (Sun 2024-03-10, 02:00 PST -> 03:00 PDT)', () => {
    const la = cal('America/Los_Angeles', ['sat', 'sun'], '09:00', '17:00');
    expect(open(la, '2024-03-09T16:30:00Z')).toBe(false); // Sat 08:30 PST
    expect(open(la, '2024-03-09T17:00:00Z')).toBe(true); // Sat 09:00 PST
    expect(open(la, '2024-03-10T16:00:00Z')).toBe(true); // Sun 09:00 PDT
    expect(open(la, '2024-03-10T15:59:00Z')).toBe(false); // Sun 08:59 PDT
    expect(open(la, '2024-03-11T00:00:00Z')).toBe(false); // Sun 17:00 PDT
  });
});

describe('calendarSpec', () => {
  const base = { name: 'change_window', timezone: 'Europe/Berlin', windows: [{ days: ['mon'], start: '09:00', end: '17:00' }] };
  const window = (w: Record<string, unknown>) => ({ ...base, windows: [{ ...base.windows[0], ...w }] });

  it('accepts a calendar of weekdays and HH:MM hours in an IANA zone', () => {
    expect(calendarSpec.safeParse(base).success).toBe(true);
    expect(calendarSpec.safeParse({ ...base, timezone: 'UTC' }).success).toBe(true);
    expect(calendarSpec.safeParse(window({ start: '00:00', end: '23:59' })).success).toBe(true);
  });

  it('refuses an unknown time zone', () => {
    expect(calendarSpec.safeParse({ ...base, timezone: 'Mars/Olympus_Mons' }).success).toBe(false);
  });

  it.each(['24:00', '9:00', '09:60', '0900', '09:00:00', ''])('refuses the time %j', (t) => {
    expect(calendarSpec.safeParse(window({ start: t })).success).toBe(false);
    expect(calendarSpec.safeParse(window({ end: t })).success).toBe(false);
  });

  it('refuses no days, an unknown day, no windows, a bad name and unknown keys (no cron form)', () => {
    expect(calendarSpec.safeParse(window({ days: [] })).success).toBe(false);
    expect(calendarSpec.safeParse(window({ days: ['monday'] })).success).toBe(false);
    expect(calendarSpec.safeParse({ ...base, windows: [] }).success).toBe(false);
    expect(calendarSpec.safeParse({ ...base, name: 'Change-Window' }).success).toBe(false);
    expect(calendarSpec.safeParse({ ...base, cron: '0 9 * * 1-5' }).success).toBe(false);
    expect(calendarSpec.safeParse(window({ cron: '0 9 * * 1-5' })).success).toBe(false);
  });
});
