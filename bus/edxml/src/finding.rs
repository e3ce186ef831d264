//! Findings: what the reader noticed, where, and what to do about it. Bad input is data, not a log line.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Severity {
    /// The package is usable; something deviates from the canonical form.
    Warning,
    /// The package is unusable.
    Error,
}

/// A user-facing text in Vietnamese (default) and English; each says what is wrong, where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub vi: String,
    pub en: String,
}

/// One diagnostic. `code` is stable (tests, the example corpus and callers match on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub code: &'static str,
    /// 1-based line of the input.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// Element path, e.g. `/edXML/edXMLEnvelope/edXMLHeader/MessageHeader/To[2]/OrganId`.
    pub path: String,
    pub message: Message,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(
            f,
            "{sev}[{}] {}:{} {}: {}",
            self.code, self.line, self.column, self.path, self.message.en
        )
    }
}

/// Reader limits, enforced before (`max_bytes`) and while (`max_depth`) parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
}

impl Default for Limits {
    /// 100 MiB, nesting depth 64.
    fn default() -> Self {
        Limits {
            max_bytes: 100 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// A package that cannot be used: at least one error (errors first), then the warnings seen so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub findings: Vec<Finding>,
}

impl Rejected {
    /// The errors, in the order found.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    /// The warnings seen before the package was rejected.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.errors().next() {
            Some(e) => write!(f, "edXML package rejected: {e}"),
            None => f.write_str("edXML package rejected"),
        }
    }
}

impl std::error::Error for Rejected {}

/// Maps byte offsets to 1-based (line, column in characters), in one sweep over the input up to the last
/// offset, whatever the order of `offsets`.
pub(crate) fn line_columns(input: &[u8], offsets: &[usize]) -> Vec<(u32, u32)> {
    let mut order: Vec<usize> = (0..offsets.len()).collect();
    order.sort_by_key(|&i| offsets[i]);
    let mut out = vec![(1u32, 1u32); offsets.len()];
    // Cursor: position `at`, on line `line`, which starts at `line_start`; `column` counts characters of
    // input[line_start..at].
    let (mut at, mut line, mut column) = (0usize, 1usize, 0usize);
    for i in order {
        let target = offsets[i].min(input.len());
        let segment = &input[at..target];
        let newlines = memchr::memchr_iter(b'\n', segment).count();
        if newlines > 0 {
            line += newlines;
            let last = memchr::memrchr(b'\n', segment).map_or(0, |k| k + 1);
            column = chars(&segment[last..]);
        } else {
            column += chars(segment);
        }
        at = target;
        out[i] = (
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(column + 1).unwrap_or(u32::MAX),
        );
    }
    out
}

/// Characters in a UTF-8 byte run: every byte that does not continue a sequence starts one.
fn chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let s = "ab\nĐà<x>\n\nz".as_bytes();
        let lt = s.iter().position(|&b| b == b'<').unwrap();
        let z = s.len() - 1;
        // Any order in, answers in the same order.
        assert_eq!(
            line_columns(s, &[z, lt, 0, 3, 1, 1_000]),
            [(4, 1), (2, 3), (1, 1), (2, 1), (1, 2), (4, 2)]
        );
    }
}
