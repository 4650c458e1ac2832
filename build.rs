//! Build script: link flags for the PAM module and the version stamp.
//!
//! The cdylib is installed as `pam_mailmfa.so`, so it gets that soname. It is linked with
//! `-z nodelete`: libpam `dlclose`s every module at `pam_end`, and mapping, relocating and
//! unmapping a Rust .so at every login costs more than the login itself (see
//! `docs/benchmarks.md`). With `nodelete` the module stays mapped after the first login in a
//! process, which is why the module keeps no per-user data in statics.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,pam_mailmfa.so");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    // rustc already exports only the `#[no_mangle]` pam_sm_* functions from a cdylib (a test
    // checks the dynamic symbol table).
    println!("cargo:rerun-if-changed=.git/HEAD");
    let rev = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=MAILMFA_BUILD_REV={rev}");
}
