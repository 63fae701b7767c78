//! The concurrent-corrections rule's SQL conditions, for the reads that must decide
//! it inside one statement (the Reassess tab's list, the ward board). The rule
//! itself is `clinic_domain::corrections` (ARCHITECTURE.md, "Concurrent
//! corrections"); these are its "live" and "still owed a reassessment" in SQL,
//! written once.

/// The report aliased `$r` is live: no report supersedes it and no resolution
/// names it. (A macro, so the conditions built from it stay `&'static str`.)
macro_rules! live {
    ($r:literal) => {
        concat!(
            "NOT EXISTS (SELECT 1 FROM pain_reports n WHERE n.supersedes = ",
            $r,
            ".id)
             AND NOT EXISTS (SELECT 1 FROM report_resolutions x WHERE x.resolves = ",
            $r,
            ".id)"
        )
    };
}
pub(crate) use live;

/// The report aliased `r` is live.
pub(crate) const LIVE: &str = live!("r");

/// The report aliased `r` (which asked for a reassessment) is still owed one: no
/// live report follows it up, nor the record it corrected (the nurse did
/// reassess the patient); one from any device settles it.
pub(crate) const OWED: &str = concat!(
    "NOT EXISTS (SELECT 1 FROM pain_reports f WHERE f.follows_up IN (r.id, r.supersedes) AND ",
    live!("f"),
    ")"
);
