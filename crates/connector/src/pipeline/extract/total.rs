//! How many records a `changed_since` read returns in all, from Intacct's `totalcount`, for the
//! progress bars' percentage and time left.

use ml_intacct::{Page, Pass};

/// The first page of each of the read's two passes counts its whole pass (the later pages of a
/// keyset chain count only what is left after their position, and a chain's range), so the total
/// is known once both passes have sent their first page. Nothing is requested for it.
#[derive(Debug, Default)]
pub(super) struct ReadTotal {
    /// Per pass: `None` until its first page, then that page's `totalcount`.
    never_modified: Option<Option<u64>>,
    modified: Option<Option<u64>>,
    told: bool,
}

impl ReadTotal {
    /// Takes every page in the order the read yields them; the total, the first time it is known.
    pub(super) fn page(&mut self, page: &Page) -> Option<u64> {
        let first = match page.pass {
            Pass::NeverModified => &mut self.never_modified,
            Pass::Modified => &mut self.modified,
            Pass::Query => return None,
        };
        first.get_or_insert(page.total_count);
        match (self.never_modified, self.modified) {
            (Some(Some(a)), Some(Some(b))) if !self.told => {
                self.told = true;
                Some(a + b)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(pass: Pass, total: Option<u64>) -> Page {
        Page {
            pass,
            total_count: total,
            ..Page::default()
        }
    }

    #[test]
    fn the_total_is_the_first_page_of_each_pass_told_once() {
        let mut t = ReadTotal::default();
        assert_eq!(t.page(&page(Pass::Modified, Some(5000))), None);
        // A later page of a chain counts only what is left of it.
        assert_eq!(t.page(&page(Pass::Modified, Some(3000))), None);
        assert_eq!(t.page(&page(Pass::NeverModified, Some(120))), Some(5120));
        assert_eq!(t.page(&page(Pass::NeverModified, Some(20))), None);
        assert_eq!(t.page(&page(Pass::Modified, Some(1000))), None);
    }

    #[test]
    fn no_total_without_a_count_for_both_passes() {
        let mut t = ReadTotal::default();
        assert_eq!(t.page(&page(Pass::NeverModified, None)), None);
        assert_eq!(t.page(&page(Pass::Modified, Some(10))), None);
        assert_eq!(t.page(&page(Pass::NeverModified, Some(10))), None);
    }
}
