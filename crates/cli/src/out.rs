//! Standard output for commands whose output is piped: when the reader goes away (`audit search |
//! head -1`), the command ends quietly with success instead of panicking in `println!`. Rust ignores
//! SIGPIPE so that network writes fail with an error instead of killing the process; restoring the
//! signal would kill a `run` whose Power BI connection closed, so the pipe is handled here instead.

use std::io::Write;

/// Writes one line to standard output.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    handled(out.write_fmt(args).and_then(|()| out.write_all(b"\n")));
}

/// The outcome of a write to standard output: a reader that went away ends the command with
/// success, any other failure with an error.
pub fn handled(written: std::io::Result<()>) {
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(crate::exit::OK));
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(i32::from(crate::exit::FAILURE));
    }
}

/// `println!` for command output, through [`line`].
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
