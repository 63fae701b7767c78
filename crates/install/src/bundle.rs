//! The support bundle: one JSON file with the diagnostics, the profile and the
//! log files, for an installer to send to support. Tokens, credentials in URLs,
//! and the names and IDs of the device's patients (and staff names) are removed
//! from everything in it, even though the logs should hold none of them: a bundle
//! leaves the clinic, so it is scrubbed on the way out.
//!
//! Scrubbing works on decoded text: each log line is parsed as the JSON it is and
//! every string in it (keys too) is scrubbed, so a name that JSON escapes (a quote,
//! a backslash, `\u5f20`) is found as what it is; the line goes into the bundle as
//! that JSON value. A line that is not JSON is scrubbed as text.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::{InstallError, Profile, logfile};

const REDACTED: &str = "<redacted>";

/// Replaces known secrets, anything shaped like a bearer token, the user and
/// password of a URL, patient names and patient IDs.
pub struct Scrubber {
    secrets: Vec<String>,
    names: HashSet<String>,
    longest_name: usize,
    ids: HashSet<String>,
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
            ids: HashSet::new(),
        }
    }

    /// Also scrubs these patient IDs wherever one stands as a whole word (ASCII
    /// letters, digits, `_` and `-` on neither side), so an ID inside another word or number
    /// is left alone. IDs shorter than 2 characters are ignored, as names are.
    pub fn with_patient_ids(mut self, ids: impl IntoIterator<Item = String>) -> Self {
        self.ids = ids.into_iter().filter(|i| i.chars().count() >= 2).collect();
        self
    }

    /// `text` as it is (already decoded: see [`Scrubber::scrub_json`] for JSON).
    pub fn scrub(&self, text: &str) -> String {
        let mut s = text.to_owned();
        for secret in &self.secrets {
            s = s.replace(secret.as_str(), REDACTED);
        }
        s = redact_url_credentials(&s);
        s = redact_after(&s, "cct_");
        s = redact_after(&s, "Bearer ");
        s = redact_after(&s, "bearer ");
        s = self.scrub_ids(&s);
        self.scrub_names(&s)
    }

    /// Every string in `value` (object keys included), scrubbed.
    pub fn scrub_json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.scrub(&s)),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.scrub_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.scrub(&k), self.scrub_json(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// A log line: its JSON scrubbed value by value, or the line scrubbed as text.
    pub fn scrub_line(&self, line: &str) -> serde_json::Value {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(value) => self.scrub_json(value),
            Err(_) => serde_json::Value::String(self.scrub(line)),
        }
    }

    fn scrub_ids(&self, s: &str) -> String {
        if self.ids.is_empty() {
            return s.to_owned();
        }
        // IDs are ASCII: Chinese text right beside one is not part of it.
        let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find(word) {
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
            let token = &rest[..end];
            out.push_str(if self.ids.contains(token) {
                REDACTED
            } else {
                token
            });
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
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

/// `scheme://user:password@host` → `scheme://<redacted>@host`: whatever stands
/// between `://` and the last `@` before the host ends (`/`, `?`, `#`, a space or a quote).
fn redact_url_credentials(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("://") {
        out.push_str(&rest[..pos + 3]);
        rest = &rest[pos + 3..];
        let authority_end = rest
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`') || c.is_whitespace()
            })
            .unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            out.push_str(REDACTED);
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    out
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
    let scrubber = input.scrubber;
    let mut logs = serde_json::Map::new();
    for file in logfile::log_files(input.log_dir) {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| format!("(unreadable: {e})"));
        let lines: Vec<serde_json::Value> = text.lines().map(|l| scrubber.scrub_line(l)).collect();
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        logs.insert(name, serde_json::Value::Array(lines));
    }
    let bundle = serde_json::json!({
        "generated_at": chrono::Utc::now().to_rfc3339(),
        "diagnostics": scrubber.scrub_json(input.diagnostics),
        "profile": input.profile.map(|p| scrubber.scrub(&p.redacted().to_toml())),
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
    #[case::url_credentials(
        "GET https://nurse:hunter2@central.example/v1 failed",
        "GET https://<redacted>@central.example/v1 failed"
    )]
    #[case::patient_id("opened /patients/P0000042.", "opened /patients/<redacted>.")]
    #[case::patient_id_in_chinese("患者P0000042已到", "患者<redacted>已到")]
    #[case::id_inside_a_word_stays("P00000421 and xP0000042", "P00000421 and xP0000042")]
    fn secrets_and_names_are_scrubbed(#[case] input: &str, #[case] want: &str) {
        assert_eq!(scrubber().scrub(input), want);
    }

    fn scrubber() -> Scrubber {
        Scrubber::new(
            ["s3cr3t-value".to_owned()],
            [
                "张三丰",
                "欧阳娜娜",
                "欧阳",
                "Li Wei",
                "王",
                "O'Neil \"Ann\"",
                "Ann\\Lee",
            ]
            .map(str::to_owned),
        )
        .with_patient_ids(["P0000042".to_owned()])
    }

    /// Every string in `v`, and in any string of it that is JSON itself, decoded.
    fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => {
                if let Ok(inner) = serde_json::from_str::<serde_json::Value>(s)
                    && !inner.is_string()
                {
                    strings(&inner, out);
                }
                out.push(s.clone());
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| {
                out.push(k.clone());
                strings(v, out);
            }),
            _ => {}
        }
    }

    /// A log line as the JSON logger writes it, through a whole bundle: what the
    /// secret is, decoded, is in no string of the bundle, nor in its raw bytes.
    #[rstest]
    #[case::name_with_quotes(r#"{"fields":{"message":"found O'Neil \"Ann\""}}"#, "O'Neil \"Ann\"")]
    #[case::name_with_a_backslash(r#"{"fields":{"query":"Ann\\Lee"}}"#, "Ann\\Lee")]
    #[case::unicode_escapes(r#"{"fields":{"query":"\u5f20\u4e09\u4e30"}}"#, "张三丰")]
    #[case::escaped_name_in_a_key(r#"{"fields":{"\u5f20\u4e09\u4e30":1}}"#, "张三丰")]
    #[case::url_credentials(
        r#"{"fields":{"server":"https://nurse:hunter2@central.example:8443/x"}}"#,
        "hunter2"
    )]
    #[case::url_credentials_escaped(
        r#"{"fields":{"server":"https:\/\/nurse:hunter2@central.example"}}"#,
        "hunter2"
    )]
    #[case::patient_id(r#"{"fields":{"patient":"P0000042"}}"#, "P0000042")]
    #[case::patient_id_escaped(r#"{"fields":{"patient":"\u0050\u0030000042"}}"#, "P0000042")]
    fn a_log_line_is_scrubbed_after_its_json_is_decoded(#[case] line: &str, #[case] secret: &str) {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join(logfile::LOG_FILE), format!("{line}\n")).unwrap();
        let path = write_bundle(
            &dir.path().join("out"),
            BundleInput {
                diagnostics: serde_json::json!({"serverUrl": "https://nurse:hunter2@central.example"}),
                profile: None,
                log_dir: &logs,
                scrubber: &scrubber(),
            },
        )
        .unwrap();
        let raw = std::fs::read_to_string(&path).unwrap();
        assert!(!raw.contains(secret), "{raw}");
        let bundle: serde_json::Value = serde_json::from_str(&raw).unwrap();
        let mut all = Vec::new();
        strings(&bundle, &mut all);
        let leaked: Vec<&String> = all.iter().filter(|s| s.contains(secret)).collect();
        assert!(leaked.is_empty(), "{secret} in {leaked:?}");
        // The line is still there, as the JSON it was.
        assert!(
            bundle["logs"][logfile::LOG_FILE][0]["fields"].is_object(),
            "{raw}"
        );
    }
}
