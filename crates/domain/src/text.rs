//! Rules for text that comes from outside: people's names, departments, phone
//! numbers and free text. The central server checks what it accepts with these,
//! and the device checks what it stores with the same functions, so the server
//! never accepts a record a device cannot hold.
//!
//! Text must also look like what it is: a name that shows as "王芳" must be "王芳".
//! Bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069) reorder
//! what follows them, zero-width characters (U+200B–U+200F, U+2060, U+FEFF) and
//! the soft hyphen (U+00AD) are invisible, so two records that look identical
//! could differ, or one could show as another. Every format character (Unicode
//! general category Cf), the line and paragraph separators and the Hangul fillers
//! (letters that draw nothing) are refused wherever text is accepted.

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::DomainError;

/// The device schema's `CHECK (length(name) BETWEEN 1 AND 64)`: SQLite's `length`
/// counts characters, and so does this rule.
pub const MAX_NAME_CHARS: usize = 64;
/// A department ("内科", "Pain clinic") is a label, not a paragraph.
pub const MAX_DEPARTMENT_CHARS: usize = 64;
/// Room for "+86 (010) 1234-5678 ext. 123"-style numbers, not for a note.
pub const MAX_PHONE_CHARS: usize = 32;

/// Punctuation a name may carry besides letters, marks, digits and spaces: the
/// middle dots of transcribed names (阿沛·阿旺晋美), hyphens, apostrophes, the
/// initials' full stop, the brackets a clinic adds to tell namesakes apart, and
/// the comma of "Family, Given" as hospital systems export foreign names.
pub const NAME_PUNCTUATION: &[char] = &[
    '·', '・', '•', '-', '‐', '\'', '’', '.', ',', '(', ')', '（', '）',
];

/// Characters that draw nothing or change how their neighbours are drawn.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
}

/// The checks every accepted text passes, on the text exactly as it will be
/// stored: at most `max` characters (not bytes: 汉字 count as one), no control
/// characters (a `multiline` text may have `\n`, nothing else), nothing invisible.
pub fn check_text(
    field: &'static str,
    text: &str,
    max: usize,
    multiline: bool,
) -> Result<(), DomainError> {
    if text.chars().count() > max {
        return Err(DomainError::TextTooLong { field, max });
    }
    if text
        .chars()
        .any(|c| (c.is_control() && !(multiline && c == '\n')) || is_invisible(c))
    {
        return Err(DomainError::InvisibleCharacter { field });
    }
    Ok(())
}

/// Combining marks that draw nothing: variation selectors and the combining
/// grapheme joiner. Emoji in a note carry them legitimately; a name must not, or
/// two names could look the same and differ.
fn is_invisible_mark(c: char) -> bool {
    matches!(c, '\u{034F}' | '\u{180B}'..='\u{180F}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// A person's name (a patient, a staff member): trimmed, 1 to [`MAX_NAME_CHARS`]
/// characters, letters (any script), visible combining marks, digits, spaces and
/// [`NAME_PUNCTUATION`] only.
pub fn person_name(field: &'static str, raw: &str) -> Result<String, DomainError> {
    let name = required(field, raw, MAX_NAME_CHARS)?;
    let allowed = |c: char| {
        matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter | GeneralCategoryGroup::Mark
        ) || c.general_category() == GeneralCategory::DecimalNumber
            || c == ' '
            || c == '\u{3000}'
            || NAME_PUNCTUATION.contains(&c)
    };
    if name.chars().any(is_invisible_mark) {
        return Err(DomainError::InvisibleCharacter { field });
    }
    if !name.chars().all(allowed) {
        return Err(DomainError::NameCharacter { field });
    }
    Ok(name)
}

/// A short required label such as a department: trimmed, 1 to `max` characters,
/// no control or invisible characters.
pub fn label(field: &'static str, raw: &str, max: usize) -> Result<String, DomainError> {
    required(field, raw, max)
}

fn required(field: &'static str, raw: &str, max: usize) -> Result<String, DomainError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(DomainError::TextRequired { field });
    }
    check_text(field, text, max, false)?;
    Ok(text.to_owned())
}

/// An optional phone number: blank is absent; otherwise trimmed, at most
/// [`MAX_PHONE_CHARS`] characters, at least one digit, and only ASCII digits,
/// spaces and `+ - ( )`.
pub fn phone(raw: Option<&str>) -> Result<Option<String>, DomainError> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let well_formed = text.chars().count() <= MAX_PHONE_CHARS
        && text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')'));
    if !well_formed {
        return Err(DomainError::InvalidPhone {
            max: MAX_PHONE_CHARS,
        });
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::han("王芳", Ok("王芳"))]
    #[case::trimmed("  欧阳娜娜 ", Ok("欧阳娜娜"))]
    #[case::transcribed_with_middle_dot("阿沛·阿旺晋美", Ok("阿沛·阿旺晋美"))]
    #[case::latin_with_apostrophe_and_hyphen("Anne-Marie O'Neil", Ok("Anne-Marie O'Neil"))]
    #[case::family_comma_given("SMITH, Ann", Ok("SMITH, Ann"))]
    #[case::combining_accent("Zoe\u{0308}", Ok("Zoe\u{0308}"))]
    #[case::namesakes_told_apart("王芳（大）2", Ok("王芳（大）2"))]
    #[case::at_limit_in_hanzi(&"张".repeat(64), Ok(&*"张".repeat(64)))]
    #[case::over_limit_in_hanzi(&"张".repeat(65), Err(DomainError::TextTooLong { field: "name", max: 64 }))]
    #[case::over_limit_eighty(&"a".repeat(80), Err(DomainError::TextTooLong { field: "name", max: 64 }))]
    #[case::empty("", Err(DomainError::TextRequired { field: "name" }))]
    #[case::blank_ideographic(" \u{3000} ", Err(DomainError::TextRequired { field: "name" }))]
    #[case::right_to_left_override("王\u{202E}芳", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::left_to_right_embedding("a\u{202A}b", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::first_strong_isolate("a\u{2068}b", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::pop_isolate("a\u{2069}b", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::zero_width_space("王\u{200B}芳", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::zero_width_joiner("王\u{200D}芳", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::right_to_left_mark("a\u{200F}b", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::word_joiner("a\u{2060}b", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::byte_order_mark("\u{FEFF}王芳", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::soft_hyphen("Ma\u{00AD}ria", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::variation_selector("王\u{FE0F}芳", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::combining_grapheme_joiner("王\u{034F}芳", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::hangul_filler("王\u{3164}芳", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::line_separator("a\u{2028}b", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::nul("a\0b", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::newline("王\n芳", Err(DomainError::InvisibleCharacter { field: "name" }))]
    #[case::markup("<b>王芳</b>", Err(DomainError::NameCharacter { field: "name" }))]
    #[case::emoji("王芳😀", Err(DomainError::NameCharacter { field: "name" }))]
    #[case::semicolon("a; DROP TABLE patients", Err(DomainError::NameCharacter { field: "name" }))]
    fn names_are_checked(#[case] raw: &str, #[case] expected: Result<&str, DomainError>) {
        assert_eq!(person_name("name", raw), expected.map(str::to_owned));
    }

    #[rstest]
    #[case::absent(None, Ok(None))]
    #[case::blank(Some("  "), Ok(None))]
    #[case::mobile(Some("13800138000"), Ok(Some("13800138000")))]
    #[case::formatted(Some(" +86 (10) 1234-5678 "), Ok(Some("+86 (10) 1234-5678")))]
    #[case::letters(Some("call me"), Err(DomainError::InvalidPhone { max: 32 }))]
    #[case::no_digits(Some("+-()"), Err(DomainError::InvalidPhone { max: 32 }))]
    #[case::too_long(Some(&*"1".repeat(33)), Err(DomainError::InvalidPhone { max: 32 }))]
    #[case::full_width_digits(Some("１３８"), Err(DomainError::InvalidPhone { max: 32 }))]
    #[case::zero_width(Some("138\u{200B}0013"), Err(DomainError::InvalidPhone { max: 32 }))]
    fn phones_are_checked(
        #[case] raw: Option<&str>,
        #[case] expected: Result<Option<&str>, DomainError>,
    ) {
        assert_eq!(phone(raw), expected.map(|p| p.map(str::to_owned)));
    }

    #[rstest]
    #[case::plain("内科", Ok("内科"))]
    #[case::ampersand("Pain & palliative", Ok("Pain & palliative"))]
    #[case::empty(" ", Err(DomainError::TextRequired { field: "department" }))]
    #[case::too_long(&"科".repeat(65), Err(DomainError::TextTooLong { field: "department", max: 64 }))]
    #[case::override_char("内\u{202E}科", Err(DomainError::InvisibleCharacter { field: "department" }))]
    fn labels_are_checked(#[case] raw: &str, #[case] expected: Result<&str, DomainError>) {
        assert_eq!(
            label("department", raw, MAX_DEPARTMENT_CHARS),
            expected.map(str::to_owned)
        );
    }
}
