//! Benchmarks behind `warden bench`: they measure and print, they never assert.

pub mod etcd;
pub mod gateway;
pub mod http_load;
pub mod load;
pub mod raft;
pub mod stats;
