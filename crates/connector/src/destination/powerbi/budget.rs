//! Whether a rebuild can finish inside the dataset's hourly push budgets before it starts.
//!
//! A rebuild empties the table first (a push dataset cannot replace rows by key), so one that runs
//! out of budget halfway leaves the table partial, or empty, for up to an hour; a user who stops the
//! waiting run and starts another empties it again. So the whole rebuild is priced against what
//! every process's POSTs of the last hour left (the history the store keeps for the pacer), and a
//! rebuild that does not fit is postponed, with the time the budget will have freed, while the
//! table keeps its rows. Pure: the caller reads the history and the clock.

use chrono::{DateTime, Utc};
use ml_powerbi::PushLimits;
use ml_store::PushPost;

/// What a rebuild of `rows` rows asks of the budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RebuildCost {
    pub rows: u64,
    /// POSTs at the largest batch size (byte limits only ever add POSTs to a rebuild of wide rows,
    /// which the pacer then spreads over the minute window, never over the hour).
    pub posts: u64,
    /// The table will hold at least `large_table_rows`, so the POSTs-per-hour rule applies.
    pub large: bool,
}

impl RebuildCost {
    pub fn of(rows: u64, limits: &PushLimits) -> Self {
        let per_post = limits.max_rows_per_post.max(1) as u64;
        RebuildCost {
            rows,
            posts: rows.div_ceil(per_post),
            large: rows >= limits.large_table_rows,
        }
    }
}

/// The verdict on a rebuild.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Budget {
    /// It fits what the last hour left.
    Fits,
    /// Larger than a whole hour's budget: it cannot finish inside any hour. It may start only into
    /// an hour nobody has pushed in (as good as it gets), and the caller says it will be partial
    /// for a while.
    FitsOnlyAnEmptyHour,
    /// Not now: enough will have aged out at `until`.
    Later { until: DateTime<Utc>, needs: String },
}

/// What the dataset's POSTs of the last hour used of its budgets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Used {
    pub rows: u64,
    pub posts: u64,
}

impl Used {
    /// The POSTs of `posts` still inside the hour at `now`.
    pub fn of(limits: &PushLimits, posts: &[PushPost], now: DateTime<Utc>) -> Self {
        let hour = hour(limits);
        let live: Vec<&PushPost> = posts.iter().filter(|p| p.at + hour > now).collect();
        Used {
            rows: live.iter().map(|p| p.rows).sum(),
            posts: live.len() as u64,
        }
    }

    /// Rows the hour's budget has left.
    pub fn rows_left(&self, limits: &PushLimits) -> u64 {
        limits.rows_per_hour.saturating_sub(self.rows)
    }
}

fn hour(limits: &PushLimits) -> chrono::Duration {
    chrono::Duration::from_std(limits.hour).unwrap_or(chrono::Duration::hours(1))
}

/// Prices `cost` against `posts` (the dataset's POSTs answered in the last `limits.hour`, oldest
/// first) at `now`.
pub fn check(
    limits: &PushLimits,
    cost: RebuildCost,
    posts: &[PushPost],
    now: DateTime<Utc>,
) -> Budget {
    let hour = hour(limits);
    let live: Vec<&PushPost> = posts.iter().filter(|p| p.at + hour > now).collect();
    let Used {
        rows: rows_used,
        posts: posts_used,
    } = Used::of(limits, posts, now);
    let large_limit = limits.large_table_posts_per_hour as u64;
    let oversized = cost.rows > limits.rows_per_hour || (cost.large && cost.posts > large_limit);
    // What must age out of the hour before the rebuild fits (an oversized one: everything).
    let rows_to_free = if oversized {
        rows_used
    } else {
        (rows_used + cost.rows).saturating_sub(limits.rows_per_hour)
    };
    let posts_to_free = match (cost.large, oversized) {
        (false, _) => 0,
        (true, true) => posts_used,
        (true, false) => (posts_used + cost.posts).saturating_sub(large_limit),
    };
    if rows_to_free == 0 && posts_to_free == 0 {
        return if oversized {
            Budget::FitsOnlyAnEmptyHour
        } else {
            Budget::Fits
        };
    }
    let freed_at = |need: u64, weight: &dyn Fn(&PushPost) -> u64| -> Option<DateTime<Utc>> {
        if need == 0 {
            return None;
        }
        let mut freed = 0;
        for p in &live {
            freed += weight(p);
            if freed >= need {
                return Some(p.at + hour);
            }
        }
        live.last().map(|p| p.at + hour)
    };
    let until = [
        freed_at(rows_to_free, &|p| p.rows),
        freed_at(posts_to_free, &|_| 1),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(now);
    let needs = if rows_to_free > 0 {
        format!(
            "needs {} rows of budget, {} left this hour",
            thousands(cost.rows.min(limits.rows_per_hour)),
            thousands(limits.rows_per_hour.saturating_sub(rows_used))
        )
    } else {
        format!(
            "needs {} POSTs of the {} an hour a table of {}+ rows may take, {} left this hour",
            cost.posts.min(large_limit),
            large_limit,
            thousands(limits.large_table_rows),
            large_limit.saturating_sub(posts_used)
        )
    };
    Budget::Later { until, needs }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(now: DateTime<Utc>, minutes_ago: i64) -> DateTime<Utc> {
        now - chrono::Duration::minutes(minutes_ago)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-06T14:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn post(at: DateTime<Utc>, rows: u64) -> PushPost {
        PushPost { at, rows }
    }

    #[test]
    fn a_rebuild_that_fits_what_the_hour_left_goes() {
        let l = PushLimits::default();
        let posts = vec![post(at(now(), 30), 700_000)];
        assert_eq!(
            check(&l, RebuildCost::of(200_000, &l), &posts, now()),
            Budget::Fits
        );
        assert_eq!(
            check(&l, RebuildCost::of(300_000, &l), &posts, now()),
            Budget::Fits
        );
    }

    #[test]
    fn a_rebuild_that_does_not_fit_waits_for_the_rows_to_age_out() {
        let l = PushLimits::default();
        // 939,000 rows in the hour: 61,000 left, 200,000 needed.
        let posts = vec![
            post(at(now(), 55), 500_000),
            post(at(now(), 20), 300_000),
            post(at(now(), 5), 139_000),
        ];
        match check(&l, RebuildCost::of(200_000, &l), &posts, now()) {
            Budget::Later { until, needs } => {
                // The oldest POST alone frees enough: it leaves the hour at 14:05.
                assert_eq!(until, at(now(), 55) + chrono::Duration::hours(1));
                assert_eq!(needs, "needs 200,000 rows of budget, 61,000 left this hour");
            }
            other => panic!("{other:?}"),
        }
        // POSTs older than the hour no longer count.
        let old = vec![post(at(now(), 61), 1_000_000)];
        assert_eq!(
            check(&l, RebuildCost::of(200_000, &l), &old, now()),
            Budget::Fits
        );
    }

    #[test]
    fn a_large_table_counts_its_posts_against_the_hourly_post_rule() {
        let l = PushLimits::default();
        // 100 small POSTs in the hour; a 300,000-row table needs 30 more, 20 are left.
        let posts: Vec<PushPost> = (0..100).map(|i| post(at(now(), 50 - i / 10), 10)).collect();
        match check(&l, RebuildCost::of(300_000, &l), &posts, now()) {
            Budget::Later { until, needs } => {
                assert!(needs.contains("20 left"), "{needs}");
                // The tenth oldest POST frees the tenth slot.
                assert_eq!(until, posts[9].at + chrono::Duration::hours(1));
            }
            other => panic!("{other:?}"),
        }
        // Below 250,000 rows the rule does not apply.
        assert_eq!(
            check(&l, RebuildCost::of(240_000, &l), &posts, now()),
            Budget::Fits
        );
    }

    #[test]
    fn a_table_larger_than_an_hour_of_budget_starts_only_into_an_empty_hour() {
        let l = PushLimits::default();
        let cost = RebuildCost::of(1_500_000, &l);
        assert_eq!(check(&l, cost, &[], now()), Budget::FitsOnlyAnEmptyHour);
        let posts = vec![post(at(now(), 10), 1)];
        match check(&l, cost, &posts, now()) {
            Budget::Later { until, .. } => {
                assert_eq!(until, at(now(), 10) + chrono::Duration::hours(1))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(61_000), "61,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
