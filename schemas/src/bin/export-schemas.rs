//! `export-schemas`: writes the JSON Schemas of the wire contract to `schemas/json`, or with
//! `--check` only reports how the committed files differ.
//!
//! Regenerate with `cargo run -p schemas --bin export-schemas`; verify with
//! `cargo run -p schemas --bin export-schemas -- --check` (exits 1 on any drift).

use std::process::ExitCode;

use schemas::export::{self, REGENERATE};

fn main() -> ExitCode {
    let check = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => {
            eprintln!("usage: export-schemas [--check]");
            return ExitCode::from(2);
        }
    };
    let dir = export::json_dir();
    let outcome = export::generate().and_then(|catalog| {
        let drift = if check {
            export::compare(&dir, &catalog)?
        } else {
            export::write(&dir, &catalog)?
        };
        Ok((catalog.len(), drift))
    });
    let (count, drift) = match outcome {
        Ok(done) => done,
        Err(err) => {
            eprintln!("export-schemas: {err}");
            return ExitCode::FAILURE;
        }
    };

    for change in &drift {
        println!("{change}");
    }
    if check && !drift.is_empty() {
        eprintln!(
            "{} of the schemas in {} are out of date; regenerate with `{REGENERATE}`",
            drift.len(),
            dir.display()
        );
        return ExitCode::FAILURE;
    }
    let verb = if check { "checked" } else { "wrote" };
    println!(
        "{verb} {count} schema files in {} ({} changed)",
        dir.display(),
        drift.len()
    );
    ExitCode::SUCCESS
}
