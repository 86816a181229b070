//! `jwed audit verify`: checks the chain of one or more audit files, oldest
//! first, and reports the first break.

use std::{fmt, path::PathBuf};

use crate::audit::{AuditKey, CHAIN_START, Record};

/// The first problem found in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// A line is not a record: edited beyond JSON, or cut short.
    NotARecord {
        /// File and 1-based line.
        at: Location,
    },
    /// A record's content does not match its chain value.
    Modified {
        /// File and line.
        at: Location,
        /// The record's sequence number.
        seq: u64,
    },
    /// Records are missing before this one.
    Missing {
        /// File and line of the record after the gap.
        at: Location,
        /// Sequence number expected.
        expected: u64,
        /// Sequence number found.
        found: u64,
    },
    /// A record is out of order, or one was inserted.
    OutOfOrder {
        /// File and line.
        at: Location,
        /// Sequence number expected.
        expected: u64,
        /// Sequence number found.
        found: u64,
    },
    /// The last line of a file is incomplete.
    TruncatedTail {
        /// File and line.
        at: Location,
    },
}

/// A line in one of the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

/// What an intact log contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records checked.
    pub records: u64,
    /// Sequence number of the first record; above 1 when older files were
    /// not given, which is why that record's own chain value is trusted.
    pub first_seq: u64,
}

/// Checks `files`, oldest first.
///
/// # Errors
///
/// Returns the first [`Break`], or an I/O message for an unreadable file.
pub fn verify(key: &AuditKey, files: &[PathBuf]) -> Result<Result<Verified, Break>, String> {
    let mut previous: Option<(u64, String)> = None;
    let mut verified = Verified {
        records: 0,
        first_seq: 0,
    };

    for file in files {
        let text = std::fs::read_to_string(file).map_err(|err| format!("cannot read {}: {err}", file.display()))?;
        let complete = text.is_empty() || text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();

        for (index, line) in lines.iter().enumerate() {
            let at = Location {
                file: file.clone(),
                line: index + 1,
            };
            if index + 1 == lines.len() && !complete {
                return Ok(Err(Break::TruncatedTail { at }));
            }
            let Ok(mut record) = serde_json::from_str::<Record>(line) else {
                return Ok(Err(Break::NotARecord { at }));
            };

            let expected_seq = previous.as_ref().map_or(record.seq, |(seq, _)| seq + 1);
            if record.seq > expected_seq {
                return Ok(Err(Break::Missing {
                    at,
                    expected: expected_seq,
                    found: record.seq,
                }));
            }
            if record.seq < expected_seq {
                return Ok(Err(Break::OutOfOrder {
                    at,
                    expected: expected_seq,
                    found: record.seq,
                }));
            }

            let chain = std::mem::take(&mut record.chain);
            let prior = match &previous {
                Some((_, chain)) => Some(chain.as_str()),
                None if record.seq == 1 => Some(CHAIN_START),
                // The record before this one is in a file not given.
                None => None,
            };
            if let Some(prior) = prior {
                let body = serde_json::to_string(&record).map_err(|err| err.to_string())?;
                if key.chain(prior, &body) != chain {
                    return Ok(Err(Break::Modified { at, seq: record.seq }));
                }
            }

            if previous.is_none() {
                verified.first_seq = record.seq;
            }
            verified.records += 1;
            previous = Some((record.seq, chain));
        }
    }
    Ok(Ok(verified))
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::NotARecord { at } => write!(f, "{at}: not an audit record (edited or cut short)"),
            Break::Modified { at, seq } => write!(f, "{at}: record {seq} was modified, or inserted without the key"),
            Break::Missing { at, expected, found } => {
                write!(f, "{at}: records {expected} to {} are missing", found - 1)
            }
            Break::OutOfOrder { at, expected, found } => {
                write!(f, "{at}: record {found} is out of order (expected {expected})")
            }
            Break::TruncatedTail { at } => write!(f, "{at}: the last line is incomplete (truncated tail)"),
        }
    }
}
