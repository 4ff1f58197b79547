//! SPIFFE ID parsing: any string either fails with an error or gives an ID that prints back
//! to a string which parses to the same ID.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_federation::trust::spiffe::SpiffeId;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = s.parse::<SpiffeId>() {
        let printed = id.to_string();
        let again: SpiffeId = printed.parse().expect("a printed ID parses");
        assert_eq!(again, id);
    }
});
