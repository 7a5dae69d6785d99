//! The environment file: parse and validate arbitrary text.
#![no_main]

use std::path::Path;

use dockstack::environment::{self, EnvError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("environment.yaml");
    match environment::parse(path, text) {
        Ok(env) => {
            let _ = format!("{env:?}");
            // Deterministic: the same text is valid again.
            assert!(environment::parse(path, text).is_ok());
        }
        Err(EnvError::Invalid(problems)) => {
            assert!(!problems.is_empty(), "invalid without a problem");
            // YAML breaks lines at CR, LF and CRLF.
            let lines = text.replace("\r\n", "\n").split(['\n', '\r']).count();
            for p in &problems {
                assert!(p.line >= 1 && p.column >= 1, "{p}");
                assert!(p.line <= lines, "{p}: past the end ({lines} lines)");
                let _ = p.to_string();
            }
        }
        Err(e) => panic!("parse from text gave {e}"),
    }
});
