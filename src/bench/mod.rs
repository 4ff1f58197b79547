//! Benchmarks behind `warden bench`: they measure and print, they never assert.

pub mod raft;
pub mod stats;
