//! Business days in a time zone, for escalations measured in them ("escalate after one
//! business day"). Wall-clock time is kept across days, so a step over a daylight-saving
//! change lasts 23 or 25 hours, as people expect.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Which days count: Monday to Friday in `tz`, except `holidays`.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub tz: TimeZone,
    /// Local dates that are not business days, sorted.
    pub holidays: Vec<Date>,
}

impl Calendar {
    pub fn new(tz: TimeZone, mut holidays: Vec<Date>) -> Self {
        holidays.sort();
        holidays.dedup();
        Self { tz, holidays }
    }

    pub fn is_business_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            && self.holidays.binary_search(&date).is_err()
    }

    /// The moment `n` business days after `from`: the same local time on the `n`-th
    /// business day after it. Starting on a non-business day counts from the start of
    /// the next business day, since nobody's clock runs over the weekend.
    pub fn add_business_days(&self, from: Timestamp, n: u32) -> Timestamp {
        let local = from.to_zoned(self.tz.clone()).datetime();
        let (mut date, time) = if self.is_business_day(local.date()) {
            (local.date(), local.time())
        } else {
            (
                self.next_business_day(local.date()),
                jiff::civil::Time::midnight(),
            )
        };
        for _ in 0..n {
            date = self.next_business_day(date);
        }
        // A wall time inside a spring-forward gap moves past it ("compatible").
        self.tz
            .to_ambiguous_zoned(date.to_datetime(time))
            .compatible()
            .map(|z| z.timestamp())
            .unwrap_or(from)
    }

    fn next_business_day(&self, date: Date) -> Date {
        let mut d = date;
        // Bounded: even a year of holidays ends.
        for _ in 0..400 {
            d = d.checked_add(1.day()).unwrap_or(d);
            if self.is_business_day(d) {
                return d;
            }
        }
        d
    }
}

/// How a reminder recurs, at a local time of day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recurrence {
    Daily,
    Weekly(Weekday),
    /// Day of the month, 1 to 28.
    Monthly(i8),
    /// The first `Weekday` of each listed month (1–12).
    Quarterly(Weekday, Vec<i8>),
}

impl Recurrence {
    fn matches(&self, d: Date) -> bool {
        match self {
            Self::Daily => true,
            Self::Weekly(w) => d.weekday() == *w,
            Self::Monthly(day) => d.day() == *day,
            Self::Quarterly(w, months) => {
                months.contains(&d.month()) && d.weekday() == *w && d.day() <= 7
            }
        }
    }
}

/// The first occurrence of `rec` at `hour:minute` local time strictly after `after`.
pub fn next_occurrence(
    rec: &Recurrence,
    hour: i8,
    minute: i8,
    after: Timestamp,
    tz: &TimeZone,
) -> Timestamp {
    let time = jiff::civil::Time::new(hour, minute, 0, 0).unwrap_or(jiff::civil::Time::midnight());
    let mut date = after.to_zoned(tz.clone()).date();
    // Bounded: every recurrence here repeats within a year.
    for _ in 0..400 {
        if rec.matches(date)
            && let Ok(at) = tz.to_ambiguous_zoned(date.to_datetime(time)).compatible()
            && at.timestamp() > after
        {
            return at.timestamp();
        }
        date = match date.checked_add(1.day()) {
            Ok(d) => d,
            Err(_) => break,
        };
    }
    after
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn london() -> Calendar {
        Calendar::new(
            TimeZone::get("Europe/London").unwrap(),
            vec![date(2026, 12, 25), date(2026, 12, 28)],
        )
    }

    fn at(cal: &Calendar, y: i16, m: i8, d: i8, h: i8, min: i8) -> Timestamp {
        date(y, m, d)
            .at(h, min, 0, 0)
            .to_zoned(cal.tz.clone())
            .unwrap()
            .timestamp()
    }

    fn hours(from: Timestamp, to: Timestamp) -> i64 {
        (to.as_second() - from.as_second()) / 3600
    }

    #[test]
    fn a_weekday_moves_to_the_next_weekday_at_the_same_time() {
        let cal = london();
        // Tuesday 10:30 → Wednesday 10:30.
        assert_eq!(
            cal.add_business_days(at(&cal, 2026, 11, 24, 10, 30), 1),
            at(&cal, 2026, 11, 25, 10, 30)
        );
    }

    #[test]
    fn friday_skips_the_weekend() {
        let cal = london();
        assert_eq!(
            cal.add_business_days(at(&cal, 2026, 11, 27, 16, 0), 1),
            at(&cal, 2026, 11, 30, 16, 0)
        );
    }

    #[test]
    fn weekends_count_from_the_next_business_morning() {
        let cal = london();
        // Saturday 11:00 → the clock starts Monday 00:00 → Tuesday 00:00.
        assert_eq!(
            cal.add_business_days(at(&cal, 2026, 11, 28, 11, 0), 1),
            at(&cal, 2026, 12, 1, 0, 0)
        );
    }

    #[test]
    fn holidays_are_skipped() {
        let cal = london();
        // Thursday 24 Dec 09:00: Friday 25th and Monday 28th are holidays → Tuesday 29th.
        assert_eq!(
            cal.add_business_days(at(&cal, 2026, 12, 24, 9, 0), 1),
            at(&cal, 2026, 12, 29, 9, 0)
        );
        assert!(!cal.is_business_day(date(2026, 12, 25)));
        assert!(cal.is_business_day(date(2026, 12, 29)));
    }

    #[test]
    fn wall_time_is_kept_across_daylight_saving_changes() {
        let cal = london();
        // Clocks go back on Sunday 25 Oct 2026: Friday 09:00 BST → Monday 09:00 GMT.
        let from = at(&cal, 2026, 10, 23, 9, 0);
        let to = cal.add_business_days(from, 1);
        assert_eq!(to, at(&cal, 2026, 10, 26, 9, 0));
        assert_eq!(hours(from, to), 3 * 24 + 1);
        // Clocks go forward on Sunday 29 Mar 2026: Friday 09:00 GMT → Monday 09:00 BST.
        let from = at(&cal, 2026, 3, 27, 9, 0);
        assert_eq!(hours(from, cal.add_business_days(from, 1)), 3 * 24 - 1);
    }

    #[test]
    fn reminders_recur_daily_weekly_monthly_and_quarterly() {
        let cal = london();
        let now = at(&cal, 2026, 11, 27, 10, 0); // Friday
        let next = |r: Recurrence| next_occurrence(&r, 9, 0, now, &cal.tz);
        assert_eq!(next(Recurrence::Daily), at(&cal, 2026, 11, 28, 9, 0));
        assert_eq!(
            next(Recurrence::Weekly(Weekday::Monday)),
            at(&cal, 2026, 11, 30, 9, 0)
        );
        assert_eq!(next(Recurrence::Monthly(1)), at(&cal, 2026, 12, 1, 9, 0));
        // First Monday of January 2027 is the 4th.
        assert_eq!(
            next(Recurrence::Quarterly(Weekday::Monday, vec![1, 4, 7, 10])),
            at(&cal, 2027, 1, 4, 9, 0)
        );
        // Earlier the same day still counts.
        let early = at(&cal, 2026, 11, 27, 8, 0);
        assert_eq!(
            next_occurrence(&Recurrence::Daily, 9, 0, early, &cal.tz),
            at(&cal, 2026, 11, 27, 9, 0)
        );
    }

    #[test]
    fn a_wall_time_in_a_weekday_gap_moves_past_it() {
        // Israel springs forward on Friday 27 Mar 2026 at 02:00: Thursday 02:30 plus one
        // business day is a wall time that does not exist; it becomes 03:30.
        let cal = Calendar::new(TimeZone::get("Asia/Jerusalem").unwrap(), vec![]);
        let from = at(&cal, 2026, 3, 26, 2, 30);
        let to = cal.add_business_days(from, 1).to_zoned(cal.tz.clone());
        assert_eq!(to.datetime(), date(2026, 3, 27).at(3, 30, 0, 0));
    }
}
