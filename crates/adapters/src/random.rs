//! The operating system's CSPRNG.

use phonegate_domain::ports::RandomSource;

/// Randomness from the operating system (`getrandom(2)` on Linux).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, dest: &mut [u8]) {
        // The OS generator does not fail once the system has booted; if it
        // ever did, handing out predictable codes would be far worse than
        // stopping, so this is the one place that may abort a request.
        #[expect(clippy::expect_used, reason = "no safe fallback exists for a broken CSPRNG")]
        getrandom::fill(dest).expect("the operating system's random generator failed");
    }
}
