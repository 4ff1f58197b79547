//! The on-disk and on-the-wire codec: bytes from a damaged disk or a hostile peer decode to an
//! error, never a panic or an allocation past the decode limit; what decodes encodes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_federation::command::Command;
use warden_federation::state::FederationState;
use warden_raft_store::StateMachineCore;
use warden_raft_store::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = codec::decode::<Command>(data) {
        let bytes = codec::encode(&cmd).expect("a decoded command encodes");
        codec::decode::<Command>(&bytes).expect("and decodes again");
    }
    let _ = FederationState::decode_state(data);
});
