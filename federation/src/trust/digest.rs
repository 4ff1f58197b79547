//! Hex SHA-256 digests: the CA pin a join token carries and the hash of a join token's secret
//! (the only form of it that reaches the Raft log).

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
