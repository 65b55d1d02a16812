//! `mesos-containerizer launch`: the launch helper exec'd by the agent's
//! containerizer between `clone3` and the executor. See
//! [`mesos_containerizer::helper`].
//!
//! `no_main`: the helper runs once per container launch, on the critical
//! path, and execs right away, so it skips the Rust runtime's start-up (the
//! main thread's stack-guard probe reads /proc/self/maps, ~0.3 ms here). std
//! still works: on Linux its arguments come from `.init_array`. (Under
//! `cargo test --all-targets` the test harness supplies `main` instead.)

#![cfg_attr(not(test), no_main)]

/// The C entry point.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    mesos_containerizer::helper::main()
}
