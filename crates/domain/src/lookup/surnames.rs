//! Surname readings of characters whose everyday reading differs when they are a
//! family name: 曾 is céng in 曾经 but Zēng as a surname, 单 dān / Shàn, 解 jiě / Xiè.
//!
//! Source: the readings marked 姓 (surname) in 《现代汉语词典》 (第7版, 商务印书馆,
//! 2016) and the compound surnames of 《百家姓》 with their readings in the same
//! dictionary. Only readings that differ from, or are missing as the first reading
//! of, the `pinyin` crate's heteronym data are listed: where the crate's first
//! reading already is the surname's (沈 shěn, 柏 bǎi, 冼 xiǎn, 纪 jì/jǐ toneless),
//! the common-reading key finds it. Readings are toneless, lower case, `ü` as `v`,
//! as the keys are.

/// Single-character surnames: the character and its surname reading(s).
pub(super) const SINGLE: &[(char, &[&str])] = &[
    ('曾', &["zeng"]),
    ('单', &["shan"]),
    ('解', &["xie"]),
    ('区', &["ou"]),
    ('仇', &["qiu"]),
    ('朴', &["piao"]),
    ('查', &["zha"]),
    ('盖', &["ge"]),
    ('缪', &["miao"]),
    ('乐', &["yue"]),
    ('秘', &["bi"]),
    ('繁', &["po"]),
    ('覃', &["qin"]),
    ('黑', &["he"]),
    ('员', &["yun"]),
    ('召', &["shao"]),
    ('隗', &["wei"]),
    ('种', &["chong"]),
    ('折', &["she"]),
    ('翟', &["zhai"]),
    ('卜', &["bu"]),
    ('长', &["chang"]),
    ('都', &["du"]),
    ('薄', &["bo"]),
    ('句', &["gou"]),
    ('阚', &["kan"]),
    ('藏', &["zang"]),
    ('重', &["chong"]),
    ('能', &["nai"]),
    ('洗', &["xian"]),
    ('牟', &["mu"]),
    ('蕃', &["pi"]),
    ('祭', &["zhai"]),
];

/// Compound surnames (two characters) and their reading, one per character.
pub(super) const COMPOUND: &[(&str, [&str; 2])] = &[
    ("尉迟", ["yu", "chi"]),
    ("万俟", ["mo", "qi"]),
    ("长孙", ["zhang", "sun"]),
    ("澹台", ["tan", "tai"]),
    ("单于", ["chan", "yu"]),
    ("令狐", ["ling", "hu"]),
    ("欧阳", ["ou", "yang"]),
    ("上官", ["shang", "guan"]),
    ("司马", ["si", "ma"]),
    ("诸葛", ["zhu", "ge"]),
    ("夏侯", ["xia", "hou"]),
    ("皇甫", ["huang", "fu"]),
    ("宇文", ["yu", "wen"]),
    ("呼延", ["hu", "yan"]),
    ("乐正", ["yue", "zheng"]),
    ("亓官", ["qi", "guan"]),
    ("公孙", ["gong", "sun"]),
    ("慕容", ["mu", "rong"]),
    ("东方", ["dong", "fang"]),
];

/// The surname readings of the character a name starts with.
pub(super) fn single(c: char) -> &'static [&'static str] {
    SINGLE.iter().find(|(s, _)| *s == c).map_or(&[], |(_, r)| r)
}

/// The readings of the first two characters if the name starts with a compound surname.
pub(super) fn compound(name: &[char]) -> Option<[&'static str; 2]> {
    let start: String = name.iter().take(2).collect();
    COMPOUND.iter().find(|(s, _)| *s == start).map(|(_, r)| *r)
}
