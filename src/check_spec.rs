//! `specbot check-spec FILE`: the spec file check run offline, printed as findings and the
//! coverage table.

use std::path::Path;

/// Check the file and print the report; the exit code: 0 when it passes, 1 when it does not,
/// 2 when the file cannot be read.
pub fn run(file: &Path) -> i32 {
    let text = match std::fs::read(file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            eprintln!("specbot: {}: {e}", file.display());
            return 2;
        }
    };
    let check = crate::spec::check_spec_file(&text);
    print!("{}", check.report());
    if check.passes() { 0 } else { 1 }
}
