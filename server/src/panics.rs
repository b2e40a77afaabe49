//! Caught panics in words: what `catch_unwind` returned, for a log line or
//! an error an operator reads. Used by the writer thread and the migration
//! engine, which both keep running after a panic in one unit of work.

/// The message a panic was raised with (`panic!("…")` gives a `&str` or a
/// `String`), or "unknown panic" for any other payload.
pub(crate) fn message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_str_and_string_payloads() {
        let of = |f: fn()| super::message(&*std::panic::catch_unwind(f).unwrap_err());
        assert_eq!(of(|| panic!("plain")), "plain");
        assert_eq!(of(|| panic!("with {}", 1 + 1)), "with 2");
        assert_eq!(of(|| std::panic::panic_any(7u8)), "unknown panic");
    }
}
