//! The port forwarder alone, what `plancd __forward` runs: for programs that drive sandboxes
//! without being plancd (this crate's tests, say). See `plancd_sandbox::forward`.

fn main() {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == plancd_sandbox::forward::SUBCOMMAND) {
        args.remove(0);
    }
    std::process::exit(plancd_sandbox::forward::main(&args));
}
