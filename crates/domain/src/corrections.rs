//! Concurrent corrections, decided the same everywhere (ARCHITECTURE.md,
//! "Concurrent corrections").
//!
//! Reports form chains by `supersedes`; the report at the top of a chain tree is
//! the *record*. A report is *live* when no report supersedes it and no report
//! names it in `resolves`. A record normally has one live report, its current
//! value. Two devices offline at once can each correct it, which leaves it more
//! than one live report: the record is then *conflicting*. Every correction stays
//! visible, the record is flagged, and the live report with the greatest
//! (`recorded_at`, report ID) is shown as current. A correction that supersedes the
//! shown current one and names the other live ones in `resolves` settles it.
//!
//! The input is only what every copy of a report carries (ID, `supersedes`,
//! `resolves`, when it was recorded), so every device and the server compute the
//! same outcome from the same reports, whatever order they arrived in.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use crate::DomainError;

/// What the rule reads of one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link<Id> {
    pub id: Id,
    pub supersedes: Option<Id>,
    pub resolves: Vec<Id>,
    /// When it was recorded (Unix seconds; the wire's `submitTime`).
    pub recorded_at: i64,
}

/// Where one report stands in its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing<Id> {
    /// The record: the top of the chain tree this report belongs to.
    pub record: Id,
    /// Neither superseded nor named in a `resolves`.
    pub live: bool,
    /// The record's shown current value (its one live report, or the greatest of several).
    pub current: bool,
    /// The record has more than one live report.
    pub conflicting: bool,
    /// The record's live reports, the shown current one first, then by the same
    /// order descending.
    pub record_live: Vec<Id>,
}

/// The shown current one of several live reports: the greatest (`recorded_at`, ID).
fn order_key<Id: Ord + Clone>(l: &Link<Id>) -> (i64, Id) {
    (l.recorded_at, l.id.clone())
}

/// The standing of every report in `links`, which should hold whole records (a
/// report whose `supersedes` target is missing is taken as the top of its own
/// record). A loop (no rule lets one be stored) is cut where it closes.
pub fn standings<Id>(links: &[Link<Id>]) -> HashMap<Id, Standing<Id>>
where
    Id: Clone + Eq + Hash + Ord,
{
    let by_id: HashMap<&Id, &Link<Id>> = links.iter().map(|l| (&l.id, l)).collect();
    let mut replaced: HashSet<&Id> = HashSet::new();
    for l in links {
        if let Some(s) = &l.supersedes {
            replaced.insert(s);
        }
        for r in &l.resolves {
            replaced.insert(r);
        }
    }
    // The record of each report: follow `supersedes` up while the target is here.
    let record_of = |start: &Id| -> Id {
        let mut at = start;
        for _ in 0..links.len() {
            match by_id.get(at).and_then(|l| l.supersedes.as_ref()) {
                Some(up) if by_id.contains_key(up) && up != start => at = up,
                _ => break,
            }
        }
        at.clone()
    };
    let records: HashMap<&Id, Id> = links.iter().map(|l| (&l.id, record_of(&l.id))).collect();
    let mut live_by_record: HashMap<&Id, Vec<&Link<Id>>> = HashMap::new();
    for l in links {
        if !replaced.contains(&l.id) {
            live_by_record.entry(&records[&l.id]).or_default().push(l);
        }
    }
    for live in live_by_record.values_mut() {
        live.sort_by_key(|l| std::cmp::Reverse(order_key(l)));
    }
    links
        .iter()
        .map(|l| {
            let record = records[&l.id].clone();
            let live_ids: Vec<Id> = live_by_record
                .get(&record)
                .map(|v| v.iter().map(|l| l.id.clone()).collect())
                .unwrap_or_default();
            let live = !replaced.contains(&l.id);
            let standing = Standing {
                current: live_ids.first() == Some(&l.id),
                conflicting: live_ids.len() > 1,
                live,
                record,
                record_live: live_ids,
            };
            (l.id.clone(), standing)
        })
        .collect()
}

/// What the store knows of a record someone wants to correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorrectionTarget<'a> {
    pub patient_id: &'a str,
    /// Already replaced: superseded by a correction or named in a resolution.
    pub superseded: bool,
}

/// A live report may be corrected, and only a live one: a later mistake is
/// corrected on the correction. In a conflicting record every live report may be
/// corrected (the record stays conflicting until a resolution settles it).
pub fn check_correction(target: CorrectionTarget<'_>, patient_id: &str) -> Result<(), DomainError> {
    if target.superseded {
        return Err(DomainError::AlreadySuperseded);
    }
    if target.patient_id != patient_id {
        return Err(DomainError::CorrectionForOtherPatient);
    }
    Ok(())
}

/// A resolution of a conflicting record supersedes its shown current report and
/// names every other live one in `resolves`, each once (the wire's rule,
/// [`crate::assessment::check_resolves`], holds too). `target` is the standing of
/// the report it supersedes.
pub fn check_resolution<Id: Clone + Eq + Hash>(
    target: &Standing<Id>,
    resolves: &[Id],
) -> Result<(), DomainError> {
    if !target.live {
        return Err(DomainError::AlreadySuperseded);
    }
    if !target.conflicting || !target.current {
        return Err(DomainError::InvalidResolution);
    }
    let others = &target.record_live[1..];
    let named: std::collections::HashSet<&Id> = resolves.iter().collect();
    if named.len() != resolves.len()
        || resolves.len() != others.len()
        || others.iter().any(|id| !named.contains(id))
    {
        return Err(DomainError::InvalidResolution);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    /// Each report as `"id supersedes resolves recorded_at"`, `-` for none and
    /// commas between resolved IDs; IDs are letters so orders read easily.
    fn links(spec: &[&'static str]) -> Vec<Link<&'static str>> {
        spec.iter()
            .map(|line| {
                let parts: Vec<&'static str> = line.split_whitespace().collect();
                let none = |p: &'static str| (p != "-").then_some(p);
                Link {
                    id: parts[0],
                    supersedes: none(parts[1]),
                    resolves: none(parts[2])
                        .map(|r| r.split(',').collect())
                        .unwrap_or_default(),
                    recorded_at: parts[3].parse().unwrap(),
                }
            })
            .collect()
    }

    /// Each case: the reports, then the record's live reports (current first) and
    /// whether it is conflicting, seen from every report of the record alike.
    #[rstest]
    #[case::one_report(&["a - - 1"], &["a"], false)]
    #[case::one_chain(&["a - - 1", "b a - 2", "c b - 3"], &["c"], false)]
    #[case::two_concurrent_corrections(&["a - - 1", "b a - 5", "c a - 4"], &["b", "c"], true)]
    #[case::same_time_the_greater_id_is_current(&["a - - 1", "b a - 5", "c a - 5"], &["c", "b"], true)]
    #[case::three_concurrent_corrections(&["a - - 1", "b a - 2", "c a - 4", "d a - 3"], &["c", "d", "b"], true)]
    #[case::a_resolution(&["a - - 1", "b a - 2", "c a - 3", "r c b 4"], &["r"], false)]
    #[case::a_resolution_recorded_earlier_than_what_it_settles(&["a - - 1", "b a - 2", "c a - 9", "r c b 4"], &["r"], false)]
    #[case::two_concurrent_resolutions(&["a - - 1", "b a - 2", "c a - 3", "r c b 4", "s c b 5"], &["s", "r"], true)]
    #[case::a_correction_of_one_branch(&["a - - 1", "b a - 2", "c a - 3", "d b - 4"], &["d", "c"], true)]
    #[case::a_branch_corrected_while_being_resolved(&["a - - 1", "b a - 2", "c a - 3", "r c b 4", "d b - 5"], &["d", "r"], true)]
    fn every_report_of_a_record_sees_the_same_outcome(
        #[case] spec: &[&'static str],
        #[case] live: &[&str],
        #[case] conflicting: bool,
    ) {
        let all = links(spec);
        let got = standings(&all);
        for l in &all {
            let s = &got[&l.id];
            assert_eq!(s.record, "a", "{}", l.id);
            assert_eq!(s.record_live, live, "{}", l.id);
            assert_eq!(s.conflicting, conflicting, "{}", l.id);
            assert_eq!(s.live, live.contains(&l.id), "{}", l.id);
            assert_eq!(s.current, live[0] == l.id, "{}", l.id);
        }
    }

    /// The outcome is a function of the set of reports, not of the order they arrived in.
    #[test]
    fn the_order_reports_arrive_in_changes_nothing() {
        let mut all = links(&["a - - 1", "b a - 2", "c a - 3", "d b - 4", "x - - 1"]);
        let first = standings(&all);
        all.reverse();
        assert_eq!(standings(&all), first);
        all.swap(0, 2);
        assert_eq!(standings(&all), first);
        assert_eq!(first[&"x"].record_live, ["x"], "another record is apart");
    }

    #[test]
    fn a_missing_target_or_a_loop_ends_the_walk() {
        let got = standings(&links(&["b a - 2", "c b - 3"]));
        assert_eq!((got[&"c"].record, got[&"b"].current), ("b", false));
        let looped = standings(&links(&["p q - 1", "q p - 2"]));
        assert!(looped.values().all(|s| !s.live), "both are superseded");
    }

    fn conflict() -> HashMap<&'static str, Standing<&'static str>> {
        standings(&links(&["a - - 1", "b a - 2", "c a - 4", "d a - 3"]))
    }

    #[rstest]
    #[case::names_the_other_live_ones("c", &["d", "b"], Ok(()))]
    #[case::in_any_order("c", &["b", "d"], Ok(()))]
    #[case::leaves_one_out("c", &["b"], Err(DomainError::InvalidResolution))]
    #[case::names_one_twice("c", &["b", "b", "d"], Err(DomainError::InvalidResolution))]
    #[case::names_a_superseded_one("c", &["b", "d", "a"], Err(DomainError::InvalidResolution))]
    #[case::supersedes_another_than_the_shown_current("b", &["c", "d"], Err(DomainError::InvalidResolution))]
    #[case::supersedes_a_replaced_one("a", &["c", "d"], Err(DomainError::AlreadySuperseded))]
    fn a_resolution_supersedes_the_current_and_names_the_rest(
        #[case] target: &str,
        #[case] resolves: &[&'static str],
        #[case] expected: Result<(), DomainError>,
    ) {
        assert_eq!(check_resolution(&conflict()[target], resolves), expected);
    }

    #[test]
    fn a_record_without_conflict_needs_no_resolution() {
        let one = standings(&links(&["a - - 1", "b a - 2"]));
        assert_eq!(
            check_resolution(&one[&"b"], &[]),
            Err(DomainError::InvalidResolution)
        );
    }

    #[rstest]
    #[case::live("P1", false, "P1", Ok(()))]
    #[case::already_superseded("P1", true, "P1", Err(DomainError::AlreadySuperseded))]
    #[case::other_patient("P1", false, "P2", Err(DomainError::CorrectionForOtherPatient))]
    fn corrections_replace_a_live_record(
        #[case] target_patient: &str,
        #[case] superseded: bool,
        #[case] patient: &str,
        #[case] expected: Result<(), DomainError>,
    ) {
        assert_eq!(
            check_correction(
                CorrectionTarget {
                    patient_id: target_patient,
                    superseded
                },
                patient
            ),
            expected
        );
    }

    /// Every live report of a conflicting record may be corrected, not only the shown one.
    #[test]
    fn each_live_report_of_a_conflicting_record_may_be_corrected() {
        let c = conflict();
        for id in ["b", "c", "d"] {
            let target = CorrectionTarget {
                patient_id: "P1",
                superseded: !c[id].live,
            };
            assert_eq!(check_correction(target, "P1"), Ok(()), "{id}");
        }
    }
}
