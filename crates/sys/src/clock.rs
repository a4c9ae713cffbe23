//! Wall-clock times as people read them (UTC, the proleptic Gregorian
//! calendar), for state files, logs and file headers.

/// A moment in UTC, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

impl Utc {
    /// The moment `seconds` after 1970-01-01 00:00:00 UTC.
    pub fn from_epoch_seconds(seconds: u64) -> Self {
        let (days, rest) = (seconds / 86_400, seconds % 86_400);
        // Days since 1970-01-01 to a civil date, counting in 400-year eras
        // that begin on 1 March (leap days fall at the end of each year).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Self {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rest / 3600,
            minute: rest % 3600 / 60,
            second: rest % 60,
        }
    }

    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub fn readable(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_the_calendar() {
        assert_eq!(Utc::from_epoch_seconds(0).readable(), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            Utc::from_epoch_seconds(951_782_400).readable(),
            "2000-02-29 00:00:00 UTC"
        );
        assert_eq!(
            Utc::from_epoch_seconds(1_735_689_599).readable(),
            "2024-12-31 23:59:59 UTC"
        );
    }
}
