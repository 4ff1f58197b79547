//! Config files: any text is refused with an error or gives a config that `validate` judges;
//! neither parsing nor validation may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_federation::config::NodeConfig;
use warden_gateway::config::GatewayConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = toml::from_str::<GatewayConfig>(text) {
        let _ = cfg.validate();
    }
    if let Ok(cfg) = toml::from_str::<NodeConfig>(text) {
        let _ = cfg.validate();
    }
});
