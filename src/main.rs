//! The `signgate` binary: see [`cli`].
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::indexing_slicing)]

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::main()
}
