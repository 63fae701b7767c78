//! The support bundle: one JSON file with the diagnostics, the profile and the
//! log files, for an installer to send to support. Tokens and patient names are
//! removed from everything in it, even though the logs should hold neither:
//! a bundle leaves the clinic, so it is scrubbed on the way out.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::{InstallError, Profile, logfile};

const REDACTED: &str = "<redacted>";

/// Replaces known secrets, anything shaped like a bearer token, and patient names.
pub struct Scrubber {
    secrets: Vec<String>,
    names: HashSet<String>,
    longest_name: usize,
}

impl Scrubber {
    /// `names`: every patient name on this device (shorter than 2 characters ignored,
    /// a single character would blank ordinary words).
    pub fn new(
        secrets: impl IntoIterator<Item = String>,
        names: impl IntoIterator<Item = String>,
    ) -> Self {
        let secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        let names: HashSet<String> = names
            .into_iter()
            .filter(|n| n.chars().count() >= 2)
            .collect();
        let longest_name = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        Self {
            secrets,
            names,
            longest_name,
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut s = text.to_owned();
        for secret in &self.secrets {
            s = s.replace(secret.as_str(), REDACTED);
        }
        s = redact_after(&s, "cct_");
        s = redact_after(&s, "Bearer ");
        s = redact_after(&s, "bearer ");
        self.scrub_names(&s)
    }

    // One pass, longest name first at each position: a hash lookup per candidate
    // length, so a large clinic's names cost no more than a small one's.
    fn scrub_names(&self, s: &str) -> String {
        if self.names.is_empty() {
            return s.to_owned();
        }
        let chars: Vec<(usize, char)> = s.char_indices().collect();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        'outer: while i < chars.len() {
            for len in (2..=self.longest_name.min(chars.len() - i)).rev() {
                let start = chars[i].0;
                let end = chars.get(i + len).map_or(s.len(), |c| c.0);
                if self.names.contains(&s[start..end]) {
                    out.push_str(REDACTED);
                    i += len;
                    continue 'outer;
                }
            }
            out.push(chars[i].1);
            i += 1;
        }
        out
    }
}

/// Replaces the word after each `marker` (token characters: letters, digits, `_`, `-`, `.`).
fn redact_after(s: &str, marker: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(marker) {
        out.push_str(&rest[..pos + marker.len()]);
        rest = &rest[pos + marker.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .unwrap_or(rest.len());
        if end > 0 {
            out.push_str(REDACTED);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

pub struct BundleInput<'a> {
    /// The diagnostics screen's content.
    pub diagnostics: serde_json::Value,
    pub profile: Option<&'a Profile>,
    pub log_dir: &'a Path,
    pub scrubber: &'a Scrubber,
}

/// Writes `clinic-desk-support-<UTC time>.json` into `out_dir` and returns its path.
pub fn write_bundle(out_dir: &Path, input: BundleInput<'_>) -> Result<PathBuf, InstallError> {
    let scrub = |s: &str| input.scrubber.scrub(s);
    let mut logs = serde_json::Map::new();
    for file in logfile::log_files(input.log_dir) {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| format!("(unreadable: {e})"));
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::Value::String(scrub(l)))
            .collect();
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        logs.insert(name, serde_json::Value::Array(lines));
    }
    let diagnostics: serde_json::Value =
        serde_json::from_str(&scrub(&input.diagnostics.to_string()))
            .unwrap_or(serde_json::Value::Null);
    let bundle = serde_json::json!({
        "generated_at": chrono::Utc::now().to_rfc3339(),
        "diagnostics": diagnostics,
        "profile": input.profile.map(|p| scrub(&p.redacted().to_toml())),
        "logs": logs,
    });
    std::fs::create_dir_all(out_dir)
        .map_err(|e| InstallError::Io(format!("cannot create {}: {e}", out_dir.display())))?;
    let path = out_dir.join(format!(
        "clinic-desk-support-{}.json",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    let text = serde_json::to_string_pretty(&bundle).expect("JSON values serialise");
    std::fs::write(&path, text)
        .map_err(|e| InstallError::Io(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case::known_secret("token=s3cr3t-value here", "token=<redacted> here")]
    #[case::token_shape("auth cct_AbC-12.x failed", "auth cct_<redacted> failed")]
    #[case::bearer("Authorization: Bearer abc.def", "Authorization: Bearer <redacted>")]
    #[case::name_in_chinese("{\"q\":\"张三丰\"}", "{\"q\":\"<redacted>\"}")]
    #[case::longest_name_first("欧阳娜娜到了", "<redacted>到了")]
    #[case::latin_name("patient Li Wei seen", "patient <redacted> seen")]
    #[case::nothing_to_hide("sync finished in 12 ms", "sync finished in 12 ms")]
    fn secrets_and_names_are_scrubbed(#[case] input: &str, #[case] want: &str) {
        let s = Scrubber::new(
            ["s3cr3t-value".to_owned()],
            ["张三丰", "欧阳娜娜", "欧阳", "Li Wei", "王"].map(str::to_owned),
        );
        assert_eq!(s.scrub(input), want);
    }
}
