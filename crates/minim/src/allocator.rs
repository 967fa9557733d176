//! The process allocator (mimalloc) and the one option Minim sets on it (`[memory]`).
//!
//! mimalloc hands memory that a query freed back to the operating system after a
//! *purge delay* (1 s by default in the mimalloc v3 the crate builds). Queries arrive a
//! few at a time, each allocating and freeing hundreds of MB of batches and hash
//! tables; with a 1 s delay the next query faults the same memory back in, and the
//! kernel zeroes every page again (`clear_page_erms`: ~6% of a funnel's CPU, 3–4% of a
//! retention's, BENCHMARKS.md). The default here keeps freed memory for 10 s, so a
//! burst of queries reuses it; an idle server still returns it. The price is resident
//! memory that stays up to the delay after a large query (bounded by what queries may
//! hold, `query.memory_bytes_per_query` × `query.max_concurrent_queries`).
//!
//! mimalloc's own variable `MIMALLOC_PURGE_DELAY` (or its old name
//! `MIMALLOC_RESET_DELAY`), when set, wins over the configuration: it is the
//! allocator's documented switch and an operator who sets it means it.

use std::ffi::c_long;

/// mimalloc: the ingest path allocates many small strings on the async workers and the
/// flusher frees them in bulk; glibc malloc's arena locks showed up as latency stalls.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    // Both are defined in `allocator.c` (compiled by build.rs against mimalloc's header);
    // they only read or write one option word of the allocator.
    fn minim_allocator_set_purge_delay(ms: c_long);
    fn minim_allocator_purge_delay() -> c_long;
}

/// The environment variables with which mimalloc reads the purge delay itself.
const ALLOCATOR_ENV: [&str; 2] = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"];

/// `[memory]`: how the process holds memory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Milliseconds that freed memory stays with the process before it is returned to
    /// the operating system; 0 returns it at once, -1 never.
    pub allocator_purge_delay_ms: i64,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            allocator_purge_delay_ms: 10_000,
        }
    }
}

impl MemoryConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.allocator_purge_delay_ms < -1 {
            return Err(format!(
                "allocator_purge_delay_ms must be -1 (never), 0 (at once) or a number of \
                 milliseconds, not {}",
                self.allocator_purge_delay_ms
            ));
        }
        Ok(())
    }
}

/// Applies `cfg` to the running allocator, unless mimalloc's own variable is set.
/// Returns the purge delay in effect afterwards.
pub fn configure(cfg: &MemoryConfig) -> i64 {
    if !ALLOCATOR_ENV.iter().any(|v| std::env::var_os(v).is_some()) {
        // Saturates only on targets whose `long` is 32 bits (a delay of 24 days).
        let ms = c_long::try_from(cfg.allocator_purge_delay_ms).unwrap_or(c_long::MAX);
        // SAFETY: sets one option word; mimalloc reads options at each purge decision,
        // so changing one while other threads allocate is what its API is for.
        unsafe { minim_allocator_set_purge_delay(ms) };
    }
    purge_delay_ms()
}

/// The purge delay the allocator uses now, ms.
#[allow(clippy::useless_conversion)] // `long` is 32 bits on some targets
pub fn purge_delay_ms() -> i64 {
    // SAFETY: reads one option word.
    i64::from(unsafe { minim_allocator_purge_delay() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_sets_the_allocators_purge_delay() {
        // One test changes the process-wide option (tests run in threads of one process).
        if ALLOCATOR_ENV.iter().any(|v| std::env::var_os(v).is_some()) {
            return; // the operator's variable wins, by design (tested through the binary)
        }
        let before = purge_delay_ms();
        for ms in [10_000, -1, 0, 250] {
            let cfg = MemoryConfig {
                allocator_purge_delay_ms: ms,
            };
            assert_eq!(configure(&cfg), ms);
            assert_eq!(purge_delay_ms(), ms);
        }
        configure(&MemoryConfig {
            allocator_purge_delay_ms: before,
        });
    }

    #[test]
    fn delays_below_minus_one_are_refused() {
        assert!(MemoryConfig::default().validate().is_ok());
        for ms in [-1, 0, 1, i64::MAX] {
            let cfg = MemoryConfig {
                allocator_purge_delay_ms: ms,
            };
            assert!(cfg.validate().is_ok(), "{ms}");
        }
        let err = MemoryConfig {
            allocator_purge_delay_ms: -2,
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("allocator_purge_delay_ms"), "{err}");
    }
}
