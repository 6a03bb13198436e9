//! Arbitrary bytes through the frame checks and pgwire's decoder: nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small maximum makes the size check reachable with small inputs.
    let _ = meridian_pgwire::fuzzing::decode_frontend(data, 4096);
});
