//! Helpers for the workspace's property tests (the `testing` feature, which
//! only dev-dependencies turn on): not part of the library proper.

/// A small deterministic pseudo-random generator (xorshift64), seeded per
/// test so that a failure replays.
#[derive(Debug, Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (which must not be 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
