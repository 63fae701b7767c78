//! W3C Trace Context's `traceparent` header, `00-<trace-id>-<parent-id>-<flags>`:
//! the sync client makes one per request (one trace ID per sync run, a fresh
//! parent ID per request) and the server reads the trace ID from it onto the
//! request's log lines. IDs are lowercase hex and never all zeros.

use std::fmt;

/// The header's name.
pub const TRACEPARENT: &str = "traceparent";

/// The only version this crate writes; a later one is read by its first four fields.
const VERSION: u8 = 0x00;
/// The version the specification reserves as invalid.
const INVALID_VERSION: u8 = 0xff;
/// Trace flags with the `sampled` bit set.
pub const SAMPLED: u8 = 0x01;

/// The ID every request of one trace carries: 16 bytes, not all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId([u8; 16]);

/// The ID of one request within a trace: 8 bytes, not all zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParentId([u8; 8]);

impl TraceId {
    pub fn random() -> Self {
        Self(random_non_zero())
    }

    /// `None` for all zeros, which the specification calls invalid.
    pub fn from_bytes(bytes: [u8; 16]) -> Option<Self> {
        non_zero(bytes).map(Self)
    }
}

impl ParentId {
    pub fn random() -> Self {
        Self(random_non_zero())
    }

    /// `None` for all zeros, which the specification calls invalid.
    pub fn from_bytes(bytes: [u8; 8]) -> Option<Self> {
        non_zero(bytes).map(Self)
    }
}

/// A parsed or new `traceparent` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    pub parent_id: ParentId,
    pub flags: u8,
}

impl TraceParent {
    /// A new request of trace `trace_id`: a fresh parent ID, sampled.
    pub fn child_of(trace_id: TraceId) -> Self {
        Self {
            trace_id,
            parent_id: ParentId::random(),
            flags: SAMPLED,
        }
    }

    /// The header's value read by the specification's rules, or `None` when it is
    /// invalid: version `ff` or not two hex digits, version `00` with more than four
    /// fields, an ID of the wrong length, with uppercase or other non-hex characters,
    /// or all zeros. A later version is read by its first four fields.
    pub fn parse(value: &str) -> Option<Self> {
        let mut fields = value.trim().split('-');
        let [version] = hex::<1>(fields.next()?)?;
        if version == INVALID_VERSION {
            return None;
        }
        let trace_id = TraceId::from_bytes(hex(fields.next()?)?)?;
        let parent_id = ParentId::from_bytes(hex(fields.next()?)?)?;
        let [flags] = hex::<1>(fields.next()?)?;
        if version == VERSION && fields.next().is_some() {
            return None;
        }
        Some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{VERSION:02x}-{}-{}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Display for ParentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for ParentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

fn non_zero<const N: usize>(bytes: [u8; N]) -> Option<[u8; N]> {
    bytes.iter().any(|&b| b != 0).then_some(bytes)
}

fn random_non_zero<const N: usize>() -> [u8; N] {
    loop {
        let mut bytes = [0; N];
        fastrand::fill(&mut bytes);
        if let Some(bytes) = non_zero(bytes) {
            return bytes;
        }
    }
}

/// Exactly `2 * N` lowercase hex digits (the specification allows no uppercase).
fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    #[rstest]
    #[case::valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Some(0x01))]
    #[case::not_sampled("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", Some(0x00))]
    #[case::surrounding_space(
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        Some(0x01)
    )]
    #[case::later_version_with_more_fields(
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next",
        Some(0x01)
    )]
    #[case::version_ff("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None)]
    #[case::version_not_hex("0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None)]
    #[case::version_00_with_more_fields(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        None
    )]
    #[case::zero_trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None)]
    #[case::zero_parent_id("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None)]
    #[case::short_trace_id("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", None)]
    #[case::long_trace_id("00-4bf92f3577b34da6a3ce929d0e0e47360-00f067aa0ba902b7-01", None)]
    #[case::short_parent_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01", None)]
    #[case::long_flags("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-001", None)]
    #[case::one_digit_version("0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None)]
    #[case::uppercase_trace_id("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None)]
    #[case::uppercase_parent_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", None)]
    #[case::missing_flags("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", None)]
    #[case::multibyte("00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01", None)]
    #[case::empty("", None)]
    fn traceparent_cases(#[case] header: &str, #[case] flags: Option<u8>) {
        let parsed = TraceParent::parse(header);
        assert_eq!(parsed.map(|t| t.flags), flags, "{header:?}");
        if let Some(t) = parsed {
            assert_eq!(t.trace_id.to_string(), TRACE);
            assert_eq!(t.parent_id.to_string(), PARENT);
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_round_trips_through_the_header() {
        let trace_id = TraceId::random();
        let first = TraceParent::child_of(trace_id);
        let second = TraceParent::child_of(trace_id);
        assert_ne!(first.parent_id, second.parent_id, "a parent ID per request");
        for sent in [first, second] {
            let header = sent.to_string();
            assert_eq!(header.len(), 55, "{header}");
            assert_eq!(TraceParent::parse(&header), Some(sent), "{header}");
            assert_eq!(sent.trace_id, trace_id);
            assert_eq!(sent.flags, SAMPLED);
        }
    }

    #[test]
    fn all_zero_ids_are_never_made() {
        assert_eq!(TraceId::from_bytes([0; 16]), None);
        assert_eq!(ParentId::from_bytes([0; 8]), None);
        assert!(TraceId::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_some());
    }
}
