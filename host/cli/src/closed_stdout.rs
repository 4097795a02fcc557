//! A closed stdout (or stderr) ends the process quietly, as it ends a C
//! filter: `wactor consume t | head -1`, `wactor actors | head`,
//! `wactor invoke ... | true`.
//!
//! The Rust runtime ignores SIGPIPE, so a write to a pipe whose reader is
//! gone fails with `BrokenPipe`, and `println!` panics on that failure.
//! Well-kept Rust CLIs take one of two fixes:
//!
//! - restore SIGPIPE's default action at the start of `main` (rustc's
//!   driver did; small filters do), so the kernel ends the process at the
//!   first such write; or
//! - treat `BrokenPipe` on stdout as the end of the output and exit quietly
//!   (ripgrep, bat, fd; uutils coreutils silences the `println!` panic with
//!   a panic hook).
//!
//! wactor takes the second, because the first is unsafe for it: with
//! SIGPIPE's default action, *any* write to a peer that has gone kills
//! the process silently, not only writes to stdout. Rust's sockets avoid
//! the signal only on `send` (`MSG_NOSIGNAL`), not on the vectored writes
//! hyper uses, and librdkafka's TLS writes go through OpenSSL's socket
//! writes; so an admin API client that disconnects mid-response would kill
//! `wactor serve`, and a host that closes the connection during `wactor
//! deploy`'s upload would end the deploy with no error printed. Here only a
//! write *to stdout or stderr* ends the process, through two doors:
//!
//! - [`install`]: a panic hook that recognises the standard library's
//!   "failed printing to stdout: Broken pipe" panic of `println!` (and
//!   `print!`, `eprintln!`), from any thread, so every verb's output is
//!   covered, whichever module prints;
//! - [`written`]: for code that writes to stdout through `write!` and
//!   propagates errors (`wactor consume`), which would otherwise report
//!   the broken pipe as an error.
//!
//! Either ends the process by [`end`]: killed by SIGPIPE on unix, exactly
//! as the default action would have (a shell prints nothing for it, and
//! `set -o pipefail` sees 141, as for `yes | head`); exit status 0
//! elsewhere.

use std::io;
use std::panic::PanicHookInfo;

/// The `Display` of a broken pipe error, as the standard library's print
/// panic carries it (`"Broken pipe (os error 32)"` on Linux).
fn broken_pipe_text() -> String {
    #[cfg(unix)]
    {
        io::Error::from_raw_os_error(libc::EPIPE).to_string()
    }
    #[cfg(not(unix))]
    {
        io::Error::from(io::ErrorKind::BrokenPipe).to_string()
    }
}

/// Whether a panic message is the standard library's report of a print to
/// a closed stdout or stderr (`std::io::stdio::print_to`:
/// `"failed printing to {label}: {error}"`).
fn is_closed_output_panic(message: &str, broken_pipe: &str) -> bool {
    let Some(rest) = message.strip_prefix("failed printing to ") else {
        return false;
    };
    ["stdout: ", "stderr: "]
        .iter()
        .any(|label| rest.strip_prefix(label) == Some(broken_pipe))
}

/// The message of a panic, when it is a string.
fn panic_message<'a>(info: &'a PanicHookInfo<'_>) -> Option<&'a str> {
    let payload = info.payload();
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

/// Installs the panic hook that ends the process quietly when a print
/// found stdout or stderr closed; any other panic goes to the hook that
/// was there. Call it first thing in `main`.
pub fn install() {
    let broken_pipe = broken_pipe_text();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if panic_message(info).is_some_and(|m| is_closed_output_panic(m, &broken_pipe)) {
            end();
        }
        previous(info);
    }));
}

/// Passes `result` on, unless it is a write that found stdout closed:
/// then the process ends quietly. For writes to stdout only (a broken
/// pipe elsewhere is an error to report).
pub fn written<T>(result: io::Result<T>) -> io::Result<T> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => end(),
        other => other,
    }
}

/// Ends the process as SIGPIPE's default action would.
pub fn end() -> ! {
    #[cfg(unix)]
    // SAFETY: `signal` and `raise` are async-signal-safe and take no
    // pointers; restoring the default action of SIGPIPE and raising it
    // ends the process at once (no destructor runs, none is needed: the
    // output has nowhere to go).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_librarys_print_panic_on_a_closed_pipe_is_recognised() {
        let broken = broken_pipe_text();
        assert!(is_closed_output_panic(
            &format!("failed printing to stdout: {broken}"),
            &broken
        ));
        assert!(is_closed_output_panic(
            &format!("failed printing to stderr: {broken}"),
            &broken
        ));
    }

    #[test]
    fn other_panics_and_other_print_errors_are_not() {
        let broken = broken_pipe_text();
        assert!(!is_closed_output_panic(
            "failed printing to stdout: No space left on device (os error 28)",
            &broken
        ));
        assert!(!is_closed_output_panic(&broken, &broken));
        assert!(!is_closed_output_panic(
            &format!("index out of bounds: {broken}"),
            &broken
        ));
    }

    #[test]
    fn written_passes_other_results_on() {
        assert_eq!(written(Ok::<_, io::Error>(3)).ok(), Some(3));
        let other = written::<()>(Err(io::Error::from(io::ErrorKind::WriteZero)));
        assert_eq!(
            other.err().map(|e| e.kind()),
            Some(io::ErrorKind::WriteZero)
        );
    }
}
