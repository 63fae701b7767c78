//! How a nurse's query finds a patient: the keys each patient is indexed under, and
//! the order in which kinds of match are tried.
//!
//! A clerk has whatever the patient gives: an ID or MRN (often scanned), a name in
//! 汉字 (often two characters, or only the surname), its pinyin initials (`zs` for
//! 张三) or full pinyin, or the last digits of a phone. Each patient is indexed
//! under every such key, so the store answers each kind with one index range.
//!
//! Pinyin keys read a name the way a clerk does: every character by its common
//! reading (the first of the `pinyin` crate's heteronym readings), and a name that
//! starts with a surname read differently as a surname (曾 Zēng, 单 Shàn, 解 Xiè,
//! 尉迟 Yùchí; see [`surnames`]) also by that surname reading, under separate key
//! kinds ranked after the common-reading ones. Other rare readings (俊 shùn, 朱 shū)
//! are not indexed: they only made `zs` find 朱俊.

mod surnames;

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
    /// Pinyin initials by the common reading of each character, lower case (`zs`).
    Initials = 4,
    /// Full pinyin by the common reading, without tones or spaces (`zhangsan`).
    Pinyin = 5,
    /// Phone digits reversed: a phone tail is a prefix of it.
    PhoneReversed = 6,
    /// Pinyin initials with the surname read as a surname (`zl` for 曾丽), when that
    /// differs from the common reading.
    SurnameInitials = 7,
    /// Full pinyin with the surname read as a surname (`zengli` for 曾丽).
    SurnamePinyin = 8,
}

/// Why a patient matched, best first; the UI highlights accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
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
        // Within each kind, names read the everyday way come before names that only
        // match through a surname reading.
        probes.push(probe(
            KeyKind::Initials,
            lower.clone(),
            true,
            MatchKind::Initials,
        ));
        probes.push(probe(
            KeyKind::SurnameInitials,
            lower.clone(),
            true,
            MatchKind::Initials,
        ));
        probes.push(probe(
            KeyKind::Pinyin,
            lower.clone(),
            true,
            MatchKind::Pinyin,
        ));
        probes.push(probe(
            KeyKind::SurnamePinyin,
            lower,
            true,
            MatchKind::Pinyin,
        ));
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

/// Toneless, lower case, `ü` as `v`, as keys are.
fn plain(reading: &str) -> String {
    reading.replace('ü', "v")
}

/// The readings of each character of `name`: first its common reading (the first
/// of the crate's heteronym readings, which lists the commonest first), then any
/// surname readings that differ from it, for the first character (or the first two
/// of a compound surname). A character with no reading (a Latin letter in a name)
/// stands for itself.
fn readings(name: &[char]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = name
        .iter()
        .map(|c| {
            let common = c
                .to_pinyin_multi()
                .and_then(|m| m.into_iter().next().map(|p| plain(p.plain())))
                .unwrap_or_else(|| c.to_lowercase().collect());
            vec![common]
        })
        .collect();
    let mut add = |at: usize, reading: &str| {
        if let Some(options) = out.get_mut(at)
            && !options.iter().any(|r| r == reading)
        {
            options.push(plain(reading));
        }
    };
    if let Some(&first) = name.first() {
        for reading in surnames::single(first) {
            add(0, reading);
        }
    }
    if let Some([a, b]) = surnames::compound(name) {
        add(0, a);
        add(1, b);
    }
    out
}

/// Joins one reading per character, for every combination up to [`MAX_READINGS`]
/// (each character's common reading comes first, so the cap drops surname variants,
/// never the common reading). The first element is the all-common-readings one.
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
    out
}

/// Pushes the common-reading key as `common` and every other reading as `surname`.
fn push_readings(
    keys: &mut Vec<(KeyKind, String)>,
    mut all: Vec<String>,
    common: KeyKind,
    surname: KeyKind,
) {
    if all.is_empty() {
        return;
    }
    let first = all.remove(0);
    for other in all {
        if other != first {
            keys.push((surname, other));
        }
    }
    keys.push((common, first));
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
        let readings = readings(&chars);
        let initials = combinations(&readings, |r| {
            r.chars().next().map(String::from).unwrap_or_default()
        });
        push_readings(
            &mut keys,
            initials,
            KeyKind::Initials,
            KeyKind::SurnameInitials,
        );
        push_readings(
            &mut keys,
            combinations(&readings, str::to_owned),
            KeyKind::Pinyin,
            KeyKind::SurnamePinyin,
        );
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
    #[case::surname_read_as_surname("曾丽", &["cl"], &["cengli"], &["zl"], &["zengli"])]
    #[case::shan("单伟", &["dw"], &["danwei"], &["sw"], &["shanwei"])]
    #[case::xie("解明", &["jm"], &["jieming"], &["xm"], &["xieming"])]
    #[case::same_initial_is_not_repeated("盖军", &["gj"], &["gaijun"], &[], &["gejun"])]
    #[case::compound_surname("尉迟恭", &["wcg"], &["weichigong"], &["ycg"], &["yuchigong"])]
    #[case::compound_and_single("万俟卨", &["wqx"], &["wanqixie"], &["mqx"], &["moqixie"])]
    #[case::rare_readings_of_given_names_are_dropped("朱俊", &["zj"], &["zhujun"], &[], &[])]
    #[case::surname_reading_only_at_the_start("李乐", &["ll"], &["lile"], &[], &[])]
    #[case::not_a_known_polyphone("张三", &["zs"], &["zhangsan"], &[], &[])]
    fn names_are_read_commonly_and_surnames_as_surnames(
        #[case] name: &str,
        #[case] initials: &[&str],
        #[case] pinyin: &[&str],
        #[case] surname_initials: &[&str],
        #[case] surname_pinyin: &[&str],
    ) {
        assert_eq!(keys_of(name, KeyKind::Initials), initials, "{name}");
        assert_eq!(keys_of(name, KeyKind::Pinyin), pinyin, "{name}");
        assert_eq!(
            keys_of(name, KeyKind::SurnameInitials),
            surname_initials,
            "{name}"
        );
        assert_eq!(
            keys_of(name, KeyKind::SurnamePinyin),
            surname_pinyin,
            "{name}"
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
    #[case("zs", &[MatchKind::IdExact, MatchKind::IdPrefix, MatchKind::Initials, MatchKind::Initials, MatchKind::Pinyin, MatchKind::Pinyin])]
    #[case("8000", &[MatchKind::IdExact, MatchKind::IdPrefix, MatchKind::PhoneTail])]
    #[case("80", &[MatchKind::IdExact, MatchKind::IdPrefix])]
    #[case("ｚｓ", &[MatchKind::IdExact, MatchKind::IdPrefix, MatchKind::Initials, MatchKind::Initials, MatchKind::Pinyin, MatchKind::Pinyin])]
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
