//! The web clients (seat map, kiosk, a front end on another origin) in a real
//! headless Chromium, against the binary this `cargo test` built: the scripts in
//! `clients/tests`, run with Node.js. Part of `cargo test`, so that one command
//! runs every test; it needs Node.js 20+ with npm and Chromium (`/usr/bin/chromium`,
//! or `CHROMIUM=/path`).

use std::path::Path;
use std::process::Command;

fn npm(dir: &Path, args: &[&str]) -> std::process::ExitStatus {
    Command::new("npm")
        .arg("--prefix")
        .arg(dir)
        .args(args)
        .env("BOXOFFICE_BIN", env!("CARGO_BIN_EXE_boxoffice"))
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run npm ({e}): the browser tests need Node.js 20+ with npm")
        })
}

#[test]
fn the_web_clients_work_in_a_real_browser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/tests");
    if !dir.join("node_modules").exists() {
        let installed = npm(&dir, &["ci", "--no-audit", "--no-fund"]);
        assert!(installed.success(), "npm ci failed in {}", dir.display());
    }
    let tested = npm(&dir, &["test"]);
    assert!(
        tested.success(),
        "the browser tests failed (their report is above)"
    );
}
