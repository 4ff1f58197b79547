//! [`Stored`]: an object kept in the Raft log and snapshots as its JSON document rather than
//! as positional bincode fields. Bincode cannot tell a missing trailing field from a short
//! input, so every field added to a bincode-stored type needs another legacy shape; a JSON
//! document reads an older entry with the new fields' serde defaults instead. The cost is a
//! larger entry and a parse on apply, which is fine for objects written by operators.
//!
//! Only formats that are not human-readable (bincode) get the text; JSON (the API, the watch)
//! sees `T` itself.

use std::ops::Deref;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `T`, stored as its JSON text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stored<T>(pub T);

/// Equality of the values: the types stored this way are validated before they are proposed,
/// so their floats are never NaN and equality is reflexive.
impl<T: PartialEq> Eq for Stored<T> {}

impl<T> Deref for Stored<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Serialize> Serialize for Stored<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return self.0.serialize(s);
        }
        let text = serde_json::to_string(&self.0).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Stored<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            return T::deserialize(d).map(Stored);
        }
        let text = String::deserialize(d)?;
        serde_json::from_str(&text)
            .map(Stored)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_raft_store::codec;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct V1 {
        a: u32,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct V2 {
        a: u32,
        #[serde(default)]
        b: Option<String>,
    }

    #[test]
    fn an_entry_written_before_a_field_was_added_still_reads() {
        let old = codec::encode(&(Stored(V1 { a: 7 }), 9u64)).unwrap();
        let (new, tail): (Stored<V2>, u64) = codec::decode(&old).unwrap();
        assert_eq!(new.0, V2 { a: 7, b: None });
        assert_eq!(tail, 9, "what follows the document still lines up");
        assert!(
            old.windows(7).any(|w| w == br#"{"a":7}"#),
            "the log holds the JSON text"
        );
        let json = serde_json::to_value(Stored(V1 { a: 7 })).unwrap();
        assert_eq!(json, serde_json::json!({"a": 7}), "JSON sees the object");
    }
}
