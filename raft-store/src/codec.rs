//! The one codec for Raft data: log entries and snapshots on disk, RPC bodies on the wire.
//!
//! bincode 2.0.1 (serde mode) is unmaintained upstream (RUSTSEC-2025-0141); keeping every use
//! behind these two functions means a swap touches only this file. Decoding is bounded so a
//! hostile or corrupt length prefix cannot make us allocate without limit.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest message or record we agree to decode (64 MiB): larger than any snapshot we expect,
/// small enough that garbage cannot exhaust memory.
pub const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    #[error("decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    #[error("decode: {0} trailing bytes after the value")]
    Trailing(usize),
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODE_BYTES>()
}

/// Encodes a value.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, config())?)
}

/// Decodes a value; the whole input must be consumed.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())?;
    if read != bytes.len() {
        return Err(CodecError::Trailing(bytes.len() - read));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let v: (u64, String, Vec<u8>) = (7, "seven".into(), vec![1, 2, 3]);
        let bytes = encode(&v).unwrap();
        let back: (u64, String, Vec<u8>) = decode(&bytes).unwrap();
        assert_eq!(v, back);
        // A trailing byte is an error, not silently ignored.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            decode::<(u64, String, Vec<u8>)>(&longer),
            Err(CodecError::Trailing(1))
        ));
        // A length prefix claiming far more than the input is an error, not an allocation.
        let garbage = [0xff_u8; 16];
        assert!(decode::<Vec<String>>(&garbage).is_err());
    }
}
