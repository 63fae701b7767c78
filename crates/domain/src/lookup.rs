//! How a nurse's query finds a patient: the keys each patient is indexed under, and
//! the order in which kinds of match are tried.
//!
//! A clerk has whatever the patient gives: an ID or MRN (often scanned), a name in
//! 汉字 (often two characters, or only the surname), its pinyin initials (`zs` for
//! 张三) or full pinyin, or the last digits of a phone. Each patient is indexed
//! under every such key, with every reading of a polyphonic character (曾 zeng/ceng,
//! 单 shan/dan, 解 jie/xie), so the store answers each kind with one index range.

use pinyin::ToPinyinMulti;

use crate::{DomainError, Patient};

/// Longest query accepted: no name, ID or phone is longer, and a stuck scanner is.
pub const MAX_QUERY_CHARS: usize = 64;
/// Shortest phone tail searched: fewer digits match too many patients to help.
pub const MIN_PHONE_TAIL: usize = 3;
/// Cap on reading combinations per name, so a name of many polyphonic characters
/// cannot multiply into hundreds of keys.
const MAX_READINGS: usize = 16;

/// What a key was made from. The numbers are stored: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// The ID, upper-cased.
    Id = 1,
    /// The whole name.
    Name = 2,
    /// Each proper suffix of the name: a substring of the name is a prefix of one.
    NameSuffix = 3,
    /// Pinyin initials, lower case (`zs`), one per reading.
    Initials = 4,
    /// Full pinyin without tones or spaces (`zhangsan`), one per reading.
    Pinyin = 5,
    /// Phone digits reversed: a phone tail is a prefix of it.
    PhoneReversed = 6,
}

/// Why a patient matched, best first; the UI highlights accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchKind {
    IdExact,
    IdPrefix,
    NameExact,
    NamePrefix,
    Initials,
    Pinyin,
    NameSubstring,
    PhoneTail,
}

/// One index probe: keys of `kind` equal to `key`, or starting with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub kind: KeyKind,
    pub key: String,
    pub prefix: bool,
    pub matched: MatchKind,
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2FA1F}')
}

/// Full-width letters and digits (what a Chinese IME types) become ASCII; white
/// space inside the query goes (clerks type `zhang san`); case is kept for the caller.
pub fn normalize(raw: &str) -> String {
    raw.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect()
}

/// The probes for `raw`, in rank order. An empty list means "nothing to search".
/// Quotes, `%`, `*`, SQL or FTS syntax are just characters here: the store binds
/// keys as values and compares them, so any text is safe to search.
pub fn plan(raw: &str) -> Result<Vec<Probe>, DomainError> {
    if raw.chars().count() > MAX_QUERY_CHARS {
        return Err(DomainError::QueryTooLong {
            max: MAX_QUERY_CHARS,
        });
    }
    let q = normalize(raw);
    if q.is_empty() {
        return Ok(vec![]);
    }
    let probe = |kind, key: String, prefix, matched| Probe {
        kind,
        key,
        prefix,
        matched,
    };
    let mut probes = Vec::new();
    if q.chars().any(is_han) {
        probes.push(probe(KeyKind::Name, q.clone(), false, MatchKind::NameExact));
        probes.push(probe(KeyKind::Name, q.clone(), true, MatchKind::NamePrefix));
        probes.push(probe(
            KeyKind::NameSuffix,
            q,
            true,
            MatchKind::NameSubstring,
        ));
        return Ok(probes);
    }
    let upper = q.to_uppercase();
    probes.push(probe(KeyKind::Id, upper.clone(), false, MatchKind::IdExact));
    probes.push(probe(KeyKind::Id, upper, true, MatchKind::IdPrefix));
    let lower = q.to_lowercase().replace('ü', "v");
    if lower.chars().all(|c| c.is_ascii_lowercase()) {
        probes.push(probe(
            KeyKind::Initials,
            lower.clone(),
            true,
            MatchKind::Initials,
        ));
        probes.push(probe(KeyKind::Pinyin, lower, true, MatchKind::Pinyin));
    } else if q.chars().all(|c| c.is_ascii_digit()) && q.len() >= MIN_PHONE_TAIL {
        probes.push(probe(
            KeyKind::PhoneReversed,
            q.chars().rev().collect(),
            true,
            MatchKind::PhoneTail,
        ));
    }
    Ok(probes)
}

/// Every reading of each character, toneless, lower case, `ü` as `v`; a character
/// with no reading (a Latin letter in a name) stands for itself.
fn readings(name: &str) -> Vec<Vec<String>> {
    name.chars()
        .map(|c| {
            let mut all: Vec<String> = c
                .to_pinyin_multi()
                .map(|m| m.into_iter().map(|p| p.plain().replace('ü', "v")).collect())
                .unwrap_or_default();
            all.dedup();
            let mut seen = std::collections::HashSet::new();
            all.retain(|r| seen.insert(r.clone()));
            if all.is_empty() {
                all.push(c.to_lowercase().collect());
            }
            all
        })
        .collect()
}

/// Joins one reading per character, for every combination up to [`MAX_READINGS`]
/// (a character's first reading is its commonest, so the cap drops the rarest).
fn combinations(readings: &[Vec<String>], part: impl Fn(&str) -> String) -> Vec<String> {
    let mut out = vec![String::new()];
    for options in readings {
        let mut next = Vec::new();
        'outer: for prefix in &out {
            for option in options {
                next.push(format!("{prefix}{}", part(option)));
                if next.len() >= MAX_READINGS {
                    break 'outer;
                }
            }
        }
        out = next;
    }
    out.sort();
    out.dedup();
    out
}

/// The keys `patient` is found by.
pub fn patient_keys(patient: &Patient) -> Vec<(KeyKind, String)> {
    let mut keys = vec![(KeyKind::Id, patient.id.as_str().to_uppercase())];
    let name = normalize(&patient.name);
    if !name.is_empty() {
        keys.push((KeyKind::Name, name.clone()));
        let chars: Vec<char> = name.chars().collect();
        for start in 1..chars.len() {
            keys.push((KeyKind::NameSuffix, chars[start..].iter().collect()));
        }
        let readings = readings(&name);
        for initials in combinations(&readings, |r| {
            r.chars().next().map(String::from).unwrap_or_default()
        }) {
            keys.push((KeyKind::Initials, initials));
        }
        for full in combinations(&readings, str::to_owned) {
            keys.push((KeyKind::Pinyin, full));
        }
    }
    if let Some(phone) = &patient.phone {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            keys.push((KeyKind::PhoneReversed, digits.chars().rev().collect()));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use rstest::rstest;

    use super::*;
    use crate::{PatientId, Sex};

    fn patient(name: &str) -> Patient {
        Patient {
            id: PatientId::parse("p0042").unwrap(),
            name: name.into(),
            sex: Sex::Male,
            birth_date: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            is_insured: true,
            phone: Some("138-0013-8000".into()),
        }
    }

    fn keys_of(name: &str, kind: KeyKind) -> Vec<String> {
        patient_keys(&patient(name))
            .into_iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v)
            .collect()
    }

    #[rstest]
    #[case("张三", KeyKind::Initials, &["zs"])]
    #[case("张三", KeyKind::Pinyin, &["zhangsan"])]
    #[case("张三丰", KeyKind::NameSuffix, &["三丰", "丰"])]
    #[case("欧阳娜娜", KeyKind::Initials, &["oynn"])]
    #[case("吕丽", KeyKind::Pinyin, &["lvli"])]
    fn names_are_indexed_by_every_handle(
        #[case] name: &str,
        #[case] kind: KeyKind,
        #[case] expected: &[&str],
    ) {
        assert_eq!(keys_of(name, kind), expected);
    }

    #[rstest]
    #[case("曾丽", "zengli", "cengli")]
    #[case("单伟", "shanwei", "danwei")]
    #[case("解明", "xieming", "jieming")]
    fn polyphonic_surnames_are_found_by_either_reading(
        #[case] name: &str,
        #[case] a: &str,
        #[case] b: &str,
    ) {
        let pinyin = keys_of(name, KeyKind::Pinyin);
        assert!(
            pinyin.contains(&a.to_owned()) && pinyin.contains(&b.to_owned()),
            "{name}: {pinyin:?}"
        );
        let initials = keys_of(name, KeyKind::Initials);
        assert!(
            initials.contains(&a[..1].to_owned())
                || initials.iter().any(|i| i.starts_with(&a[..1]))
        );
        assert!(
            initials.iter().any(|i| i.starts_with(&b[..1])),
            "{name}: {initials:?}"
        );
    }

    #[test]
    fn id_is_upper_cased_and_phone_reversed() {
        let keys = patient_keys(&patient("张三"));
        assert!(keys.contains(&(KeyKind::Id, "P0042".into())));
        assert!(keys.contains(&(KeyKind::PhoneReversed, "00083100831".into())));
    }

    fn kinds(q: &str) -> Vec<MatchKind> {
        plan(q).unwrap().into_iter().map(|p| p.matched).collect()
    }

    #[rstest]
    #[case("张", &[MatchKind::NameExact, MatchKind::NamePrefix, MatchKind::NameSubstring])]
    #[case("p00", &[MatchKind::IdExact, MatchKind::IdPrefix])]
    #[case("zs", &[MatchKind::IdExact, MatchKind::IdPrefix, MatchKind::Initials, MatchKind::Pinyin])]
    #[case("8000", &[MatchKind::IdExact, MatchKind::IdPrefix, MatchKind::PhoneTail])]
    #[case("80", &[MatchKind::IdExact, MatchKind::IdPrefix])]
    #[case("ｚｓ", &[MatchKind::IdExact, MatchKind::IdPrefix, MatchKind::Initials, MatchKind::Pinyin])]
    #[case("   ", &[])]
    #[case("'; DROP TABLE patients; --", &[MatchKind::IdExact, MatchKind::IdPrefix])]
    #[case("\"zs\" OR name:*", &[MatchKind::IdExact, MatchKind::IdPrefix])]
    fn queries_are_planned_by_what_they_look_like(#[case] q: &str, #[case] expected: &[MatchKind]) {
        assert_eq!(kinds(q), expected);
    }

    #[test]
    fn very_long_queries_are_refused() {
        assert_eq!(
            plan(&"张".repeat(65)),
            Err(DomainError::QueryTooLong {
                max: MAX_QUERY_CHARS
            })
        );
        assert!(plan(&"张".repeat(64)).is_ok());
    }

    #[test]
    fn spaces_and_full_width_are_normalized() {
        assert_eq!(normalize(" zhang san "), "zhangsan");
        assert_eq!(normalize("Ｐ１２３"), "P123");
    }
}
