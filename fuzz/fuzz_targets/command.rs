#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| odorbot_core::fuzzing::command(data));
