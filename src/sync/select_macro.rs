//! The [`select!`](crate::select) macro: crossbeam-channel's syntax over
//! [`Select`](super::Select).
//!
//! The macro parses its cases one at a time (a "tt muncher"), giving each
//! case two fresh local names (each step of the recursion is a separate
//! expansion, so names it introduces are distinct from every other
//! step's), then emits one block: a `Select` with every operation added in
//! order, one `select`/`try_select`/`select_timeout` call, and an `if`
//! chain on the chosen index that completes the operation and runs its
//! body. No closure is involved, so `return`, `break` and `?` in a body
//! act on the enclosing function or loop.

/// Waits on several channel operations at once and runs the body of the
/// first that can go ahead (Go's `select`, in crossbeam-channel's syntax).
///
/// ```text
/// spindle::select! {
///     recv(rx) -> msg => body,        // msg: Result<T, RecvError>
///     send(tx, value) -> res => body, // res: Result<(), SendError<T>>
///     default => body,                // none ready now: don't wait
///     // or: default(timeout) => body // none ready within `timeout`
/// }
/// ```
///
/// - Operations work on [`Receiver`](crate::sync::Receiver),
///   [`Sender`](crate::sync::Sender), [`SyncSender`](crate::sync::SyncSender)
///   (bounded and rendezvous), references to them and `Rc`s of them. Each
///   channel expression is evaluated once, in order; a send's `value` only
///   if that send is chosen.
/// - A disconnected channel is ready: its `recv` gives `Err(RecvError)`,
///   its `send` gives the value back in `Err(SendError(value))`.
/// - A send on a rendezvous channel goes ahead when a receiver is waiting
///   (as `try_send` does); the message is handed over and the select does
///   not wait for the receiver to run.
/// - With no `default`, the fiber parks until an operation is ready; with
///   `default(timeout)`, at most `timeout`; with `default`, not at all. At
///   most one `default`.
/// - Among the operations ready at once, one is chosen at random
///   (uniformly): no channel shuts out another.
/// - Waiting is a cancellation point: a cancelled fiber unwinds having
///   completed no operation, and the channels stay as they were (a message
///   the select was told about goes to the next waiter).
///
/// Bodies are expressions; a block body needs no comma after it. The
/// macro's value is the chosen body's value. See [`Select`](crate::sync::Select)
/// for the type underneath (for a number of operations known only at run
/// time) and how it waits on several queues.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use spindle::sync::{channel, sync_channel};
///
/// spindle::run(|| {
///     let (work_tx, work_rx) = channel::<u32>();
///     let (quit_tx, quit_rx) = sync_channel::<()>(0);
///     let worker = spindle::spawn(move || {
///         let mut sum = 0;
///         loop {
///             spindle::select! {
///                 recv(work_rx) -> job => sum += job.unwrap(),
///                 recv(quit_rx) -> _ => return sum,
///                 default(Duration::from_secs(5)) => panic!("idle for too long"),
///             }
///         }
///     });
///     for job in 1..=3 {
///         work_tx.send(job).unwrap();
///     }
///     spindle::sleep(Duration::from_millis(1)); // the worker takes the jobs
///     quit_tx.send(()).unwrap(); // a rendezvous: the worker is waiting
///     assert_eq!(worker.join().unwrap(), 6);
/// });
/// ```
///
/// Sending, and giving up at once:
///
/// ```
/// use spindle::sync::sync_channel;
///
/// let (tx, rx) = sync_channel(1);
/// let sent = spindle::select! {
///     send(tx, "first") -> res => res.is_ok(),
///     default => false,
/// };
/// assert!(sent);
/// let sent = spindle::select! {
///     send(tx, "second") -> res => res.is_ok(),
///     default => false, // full: the send is not ready
/// };
/// assert!(!sent);
/// assert_eq!(rx.try_recv(), Ok("first"));
/// ```
///
/// # Panics
///
/// As [`Select::select`](crate::sync::Select::select): if it must wait and
/// the caller is not a fiber of a runtime, and as a cancellation point.
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_internal!(@parse [] [] $($tokens)*)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_internal {
    // ---- parsing: one case per step, into [cases] and [default] ----
    (@parse [$($c:tt)*] [$($d:tt)*]) => {
        $crate::__select_internal!(@emit [$($c)*] [$($d)*])
    };
    (@parse $c:tt [$($d:tt)*] default => $body:block, $($rest:tt)*) => {
        $crate::__select_internal!(@parse $c [$($d)* (() $body)] $($rest)*)
    };
    (@parse $c:tt [$($d:tt)*] default => $body:block $($rest:tt)*) => {
        $crate::__select_internal!(@parse $c [$($d)* (() $body)] $($rest)*)
    };
    (@parse $c:tt [$($d:tt)*] default => $body:expr, $($rest:tt)*) => {
        $crate::__select_internal!(@parse $c [$($d)* (() { $body })] $($rest)*)
    };
    (@parse $c:tt [$($d:tt)*] default => $body:expr) => {
        $crate::__select_internal!(@parse $c [$($d)* (() { $body })])
    };
    (@parse $c:tt [$($d:tt)*] default ($t:expr) => $body:block, $($rest:tt)*) => {
        $crate::__select_internal!(@parse $c [$($d)* (($t) $body)] $($rest)*)
    };
    (@parse $c:tt [$($d:tt)*] default ($t:expr) => $body:block $($rest:tt)*) => {
        $crate::__select_internal!(@parse $c [$($d)* (($t) $body)] $($rest)*)
    };
    (@parse $c:tt [$($d:tt)*] default ($t:expr) => $body:expr, $($rest:tt)*) => {
        $crate::__select_internal!(@parse $c [$($d)* (($t) { $body })] $($rest)*)
    };
    (@parse $c:tt [$($d:tt)*] default ($t:expr) => $body:expr) => {
        $crate::__select_internal!(@parse $c [$($d)* (($t) { $body })])
    };
    (@parse [$($c:tt)*] $d:tt $kind:ident $args:tt -> $res:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_internal!(
            @parse [$($c)* ($kind $args ($res) $body __handle __index)] $d $($rest)*
        )
    };
    (@parse [$($c:tt)*] $d:tt $kind:ident $args:tt -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::__select_internal!(
            @parse [$($c)* ($kind $args ($res) $body __handle __index)] $d $($rest)*
        )
    };
    (@parse [$($c:tt)*] $d:tt $kind:ident $args:tt -> $res:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_internal!(
            @parse [$($c)* ($kind $args ($res) { $body } __handle __index)] $d $($rest)*
        )
    };
    (@parse [$($c:tt)*] $d:tt $kind:ident $args:tt -> $res:pat => $body:expr) => {
        $crate::__select_internal!(
            @parse [$($c)* ($kind $args ($res) { $body } __handle __index)] $d
        )
    };
    (@parse $c:tt $d:tt $($rest:tt)+) => {
        ::core::compile_error!(::core::concat!(
            "spindle::select!: expected `recv(rx) -> pat => body`, `send(tx, value) -> pat => body`, ",
            "`default => body` or `default(timeout) => body`, found: ",
            ::core::stringify!($($rest)+)
        ))
    };

    // ---- emitting ----
    (@emit [$($case:tt)*] []) => {{
        let mut __sel = $crate::sync::Select::new();
        $( $crate::__select_internal!(@add __sel $case); )*
        let __oper = __sel.select();
        $crate::__select_internal!(@dispatch __oper [$($case)*])
    }};
    (@emit [$($case:tt)*] [(() $body:block)]) => {{
        let mut __sel = $crate::sync::Select::new();
        $( $crate::__select_internal!(@add __sel $case); )*
        match __sel.try_select() {
            ::core::result::Result::Ok(__oper) => {
                $crate::__select_internal!(@dispatch __oper [$($case)*])
            }
            ::core::result::Result::Err(_) => $body,
        }
    }};
    (@emit [$($case:tt)*] [(($t:expr) $body:block)]) => {{
        let mut __sel = $crate::sync::Select::new();
        $( $crate::__select_internal!(@add __sel $case); )*
        match __sel.select_timeout($t) {
            ::core::result::Result::Ok(__oper) => {
                $crate::__select_internal!(@dispatch __oper [$($case)*])
            }
            ::core::result::Result::Err(_) => $body,
        }
    }};
    (@emit $cases:tt [$($d:tt)*]) => {
        ::core::compile_error!("spindle::select!: at most one `default` case")
    };

    // One case's operation, added to the select; binds its two names.
    (@add $sel:ident (recv ($r:expr) $res:tt $body:tt $h:ident $i:ident)) => {
        let $h = &$r;
        let $i = $crate::sync::Select::recv(&mut $sel, $h);
    };
    (@add $sel:ident (send ($s:expr, $v:expr) $res:tt $body:tt $h:ident $i:ident)) => {
        let $h = &$s;
        let $i = $crate::sync::Select::send(&mut $sel, $h);
    };
    (@add $sel:ident ($kind:ident $($rest:tt)*)) => {
        ::core::compile_error!(::core::concat!(
            "spindle::select!: unknown operation `",
            ::core::stringify!($kind),
            "` (expected `recv` or `send`)"
        ));
    };

    // The chosen case: complete its operation and run its body (an `if`
    // chain, built one case per step).
    (@dispatch $oper:ident [$($case:tt)*]) => {{
        let __chosen = $oper.index();
        $crate::__select_internal!(@chain $oper __chosen [$($case)*])
    }};
    (@chain $oper:ident $chosen:ident []) => {
        ::core::unreachable!("spindle::select!: no such operation")
    };
    (@chain $oper:ident $chosen:ident
        [(recv $args:tt ($res:pat) $body:block $h:ident $i:ident) $($rest:tt)*]) => {
        if $chosen == $i {
            let $res = $oper.recv($h);
            $body
        } else {
            $crate::__select_internal!(@chain $oper $chosen [$($rest)*])
        }
    };
    (@chain $oper:ident $chosen:ident
        [(send ($s:expr, $v:expr) ($res:pat) $body:block $h:ident $i:ident) $($rest:tt)*]) => {
        if $chosen == $i {
            let $res = $oper.send($h, $v);
            $body
        } else {
            $crate::__select_internal!(@chain $oper $chosen [$($rest)*])
        }
    };
}
