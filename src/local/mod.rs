//! Running Warden's parts as local processes on loopback: shared by the benchmarks and
//! `warden demo`.

pub mod pki;
pub mod procs;
pub mod wait;
