//! What the peer servers share: their command line.
//!
//! Each binary takes `[--workers N] [--addr ADDR]` (1 worker and
//! `127.0.0.1:8080` by default), so that run.sh starts them all alike.

/// A server's settings, from its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// How many worker threads the server runs (`--workers N`).
    pub workers: usize,
    /// The address it listens on (`--addr ADDR`).
    pub addr: String,
}

impl Args {
    /// The settings in this process's arguments.
    ///
    /// # Panics
    ///
    /// On an argument it does not know, a flag without its value, or a
    /// worker count that is not a number, naming what it expected.
    pub fn from_env() -> Args {
        Args::parse(std::env::args().skip(1))
    }

    /// The settings in `args` (without the program's name).
    ///
    /// # Panics
    ///
    /// As [`from_env`](Args::from_env).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Args {
        let mut parsed = Args {
            workers: 1,
            addr: "127.0.0.1:8080".to_string(),
        };
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "--workers" => {
                    parsed.workers = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .expect("--workers N")
                }
                "--addr" => parsed.addr = args.next().expect("--addr ADDR"),
                _ => panic!("unknown argument {a}"),
            }
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::Args;

    fn parse(args: &[&str]) -> Args {
        Args::parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        assert_eq!(
            parse(&[]),
            Args {
                workers: 1,
                addr: "127.0.0.1:8080".into()
            }
        );
        let a = parse(&["--addr", "0.0.0.0:9000", "--workers", "4"]);
        assert_eq!((a.workers, a.addr.as_str()), (4, "0.0.0.0:9000"));
    }

    #[test]
    #[should_panic(expected = "--workers N")]
    fn workers_must_be_a_number() {
        parse(&["--workers", "many"]);
    }

    #[test]
    #[should_panic(expected = "unknown argument --port")]
    fn unknown_flags_are_refused() {
        parse(&["--port", "80"]);
    }
}
