//! `medarena sandbox-child`: the sandbox's child process (hidden; the sandbox host
//! re-executes this binary with it, see `medarena_sandbox::ChildCommand::current_exe`).

use std::process::ExitCode;

pub fn run() -> anyhow::Result<ExitCode> {
    Ok(ExitCode::from(medarena_sandbox::run_child() as u8))
}
