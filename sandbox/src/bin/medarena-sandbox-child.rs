//! The sandbox child as a standalone binary (used by tests and benchmarks; the `medarena`
//! binary runs the same code as `medarena sandbox-child`).
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(medarena_sandbox::run_child() as u8)
}
