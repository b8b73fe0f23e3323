//! Contract fuzzing: `tests/contract/run` points schemathesis at a live boxoffice
//! (the binary this `cargo test` built, with its own PostgreSQL) and checks every
//! documented operation against the OpenAPI document with all of its checks: no
//! server errors, responses as documented, and the server accepting exactly the
//! requests the document allows (`tests/contract/hooks.py` names the few rules
//! JSON Schema cannot state). Part
//! of `cargo test`, so that one command runs every test; it needs Python 3 with
//! `venv` (the first run installs schemathesis from PyPI under `target/`).
//! `EXAMPLES=1000 tests/contract/run` runs it longer.

use std::path::Path;
use std::process::Command;

#[test]
fn the_rest_api_keeps_its_openapi_contract() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contract/run");
    let bin = Path::new(env!("CARGO_BIN_EXE_boxoffice"));
    let status = Command::new("bash")
        .arg(&script)
        .env("BOXOFFICE_BIN", bin)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        status.success(),
        "schemathesis found contract failures (its report is above)"
    );
}
