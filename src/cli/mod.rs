//! Command families of the `warden` binary.

pub mod bench;
pub mod client;
pub mod echo;
pub mod echo_ws;
pub mod federation;
pub mod gateway;
pub mod mesh;
pub mod objects;
pub mod placements;
pub mod signals;
pub mod trust;
