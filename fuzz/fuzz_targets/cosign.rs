#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    signgate_fuzz::cosign(data);
});
