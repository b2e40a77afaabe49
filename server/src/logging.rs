//! Log lines go to stderr, and writing one never fails the code that logs.
//!
//! tracing-subscriber reports a failed write with `eprintln!`, which panics
//! when stderr cannot be written either. With stderr on the disk that just
//! filled (a log file beside the database), that panic came out of the
//! writer thread's and the checkpointer's logging, outside their guards,
//! and both threads ended without a word. Here a line that cannot be
//! written is counted instead (`meshscope_log_lines_lost_total`), and the
//! first line written after says how many were lost.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Log lines that could not be written since the process started.
static LOST: AtomicU64 = AtomicU64::new(0);
/// Lost lines not yet reported in the log.
static UNREPORTED: AtomicU64 = AtomicU64::new(0);

/// Log lines lost so far.
pub fn lines_lost() -> u64 {
    LOST.load(Ordering::Relaxed)
}

/// stderr, as a tracing writer whose failures are counted, never raised.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::with_capacity(256))
    }
}

/// One log line, written whole when dropped.
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let mut err = std::io::stderr().lock();
        let missed = UNREPORTED.swap(0, Ordering::Relaxed);
        let note = (missed > 0).then(|| {
            format!("meshscope: {missed} log line(s) could not be written before this one\n")
        });
        let ok = note
            .as_ref()
            .is_none_or(|n| err.write_all(n.as_bytes()).is_ok())
            && err.write_all(&self.0).is_ok();
        if !ok {
            // Lost: counted, reported with the next line that gets out.
            UNREPORTED.fetch_add(missed + 1, Ordering::Relaxed);
            LOST.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("meshscope_log_lines_lost_total").increment(1);
        }
    }
}

/// Installs the process's logger: `RUST_LOG` (default `info`) to stderr,
/// through [`Stderr`].
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(Stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_buffered_until_dropped() {
        let mut l = Line(Vec::new());
        l.write_all(b"part one ").unwrap();
        l.write_all(b"part two\n").unwrap();
        assert_eq!(l.0, b"part one part two\n");
        l.0.clear(); // nothing is written for an empty line
    }
}
