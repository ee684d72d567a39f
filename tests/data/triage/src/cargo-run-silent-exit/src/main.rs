use std::process::ExitCode;

fn main() -> ExitCode {
    let ok = std::fs::read_to_string("out/result.json").map(|s| s.contains("\"status\": \"ok\"")).unwrap_or(false);
    if ok { ExitCode::SUCCESS } else { ExitCode::from(2) }
}
