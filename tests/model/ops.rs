//! The vocabulary both sides share: the operations a script is made of,
//! and the events a run logs.

/// Fibers in a program: the main fiber (actor 0) and up to four more.
pub const ACTORS: usize = 5;
/// Channels every actor can send to and receive from: channel `c` holds
/// at most `CAPACITY[c]` messages (`None`: unbounded, a `channel()`;
/// `Some(n)`: a `sync_channel(n)`, whose `send` waits while it is full).
pub const CAPACITY: [Option<usize>; 2] = [None, Some(1)];
/// How many channels there are.
pub const CHANNELS: usize = CAPACITY.len();
/// Mutexes every actor can lock.
pub const MUTEXES: usize = 2;
/// Permits of the one semaphore.
pub const PERMITS: usize = 2;
/// Greenlet slots of each actor (each actor owns its greenlets).
pub const GREENLETS: usize = 2;

/// One step of an actor's script.
///
/// Every operation is defined for every state: one that does not apply
/// (spawning an actor spawned already, joining a handle another actor took,
/// unlocking a mutex not held) is skipped and logs [`Out::Skipped`], so a
/// shrunk script is always a valid one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `spawn` actor `j`, if it never was; its handle goes to a table that
    /// every actor can take it from.
    Spawn(usize),
    /// `yield_now`.
    Yield,
    /// `sleep_until` a deadline `k` time units after the current one.
    Sleep(u64),
    /// `cancel` actor `j`'s handle, if it is still in the table.
    Cancel(usize),
    /// Take actor `j`'s handle from the table and `join` it. Only for
    /// `j` greater than the caller (no join cycles).
    Join(usize),
    /// Send a value on a channel (waits while a bounded one is full).
    Send(usize, u32),
    /// `recv` on a channel (waits while it is empty).
    Recv(usize),
    /// `lock` a mutex (skipped if this actor holds it already).
    Lock(usize),
    /// Drop this actor's guard of a mutex.
    Unlock(usize),
    /// `acquire_many` this many permits of the semaphore.
    Acquire(usize),
    /// Drop the oldest of this actor's semaphore permits.
    Release,
    /// `switch` to this actor's greenlet in a slot (a new one if the slot
    /// is empty or its greenlet has died), handing it a value.
    GSwitch(usize, u32),
    /// Drop this actor's greenlet in a slot.
    GDrop(usize),
}

/// What an operation logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    /// The operation did not apply (see [`Op`]).
    Skipped,
    Spawned,
    Yielded,
    /// Logged when a sleep starts (so a late start shows in the timing).
    Sleeping,
    Slept,
    CancelSent,
    Joined(Result<u32, String>),
    Sent,
    Received(u32),
    Locked,
    Unlocked,
    Acquired,
    Released,
    /// Logged by a greenlet's function each time it is entered, with the
    /// value it was handed.
    GEnter(u32),
    /// What `switch` returned.
    GSwitched(u32),
    GDropped,
}

/// One line of the log: actor, index of its operation, what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub actor: usize,
    pub pc: usize,
    pub out: Out,
}

/// A program: one script per actor. Actor 0 is the main fiber; the others
/// run only once some actor spawns them.
pub type Program = Vec<Vec<Op>>;

/// The main fiber's script as run: the generated part, then an epilogue
/// that cancels every handle still in the table and joins it, so that every
/// fiber the main one can still reach ends in a way the model predicts.
pub fn with_epilogue(main: &[Op]) -> Vec<Op> {
    let mut ops = main.to_vec();
    ops.extend((1..ACTORS).map(Op::Cancel));
    ops.extend((1..ACTORS).map(Op::Join));
    ops
}

/// What an actor's fiber returns: its own index, so a join shows whose
/// result it got.
pub fn result_of(actor: usize) -> u32 {
    actor as u32
}

/// A program as one line of text, to hand it to a child process:
/// actors separated by `|`, operations by `,`.
pub fn encode(program: &Program) -> String {
    let op = |op: &Op| match *op {
        Op::Spawn(j) => format!("spawn {j}"),
        Op::Yield => "yield".into(),
        Op::Sleep(k) => format!("sleep {k}"),
        Op::Cancel(j) => format!("cancel {j}"),
        Op::Join(j) => format!("join {j}"),
        Op::Send(c, v) => format!("send {c} {v}"),
        Op::Recv(c) => format!("recv {c}"),
        Op::Lock(m) => format!("lock {m}"),
        Op::Unlock(m) => format!("unlock {m}"),
        Op::Acquire(n) => format!("acquire {n}"),
        Op::Release => "release".into(),
        Op::GSwitch(g, v) => format!("gswitch {g} {v}"),
        Op::GDrop(g) => format!("gdrop {g}"),
    };
    program
        .iter()
        .map(|script| script.iter().map(op).collect::<Vec<_>>().join(","))
        .collect::<Vec<_>>()
        .join("|")
}

/// The program [`encode`] wrote.
///
/// # Panics
///
/// On text `encode` does not write.
pub fn decode(text: &str) -> Program {
    let op = |s: &str| {
        let mut words = s.split(' ');
        let name = words.next().unwrap_or_default();
        let mut arg = || -> u64 {
            let w = words
                .next()
                .unwrap_or_else(|| panic!("{s:?}: missing argument"));
            w.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
        };
        match name {
            "spawn" => Op::Spawn(arg() as usize),
            "yield" => Op::Yield,
            "sleep" => Op::Sleep(arg()),
            "cancel" => Op::Cancel(arg() as usize),
            "join" => Op::Join(arg() as usize),
            "send" => Op::Send(arg() as usize, arg() as u32),
            "recv" => Op::Recv(arg() as usize),
            "lock" => Op::Lock(arg() as usize),
            "unlock" => Op::Unlock(arg() as usize),
            "acquire" => Op::Acquire(arg() as usize),
            "release" => Op::Release,
            "gswitch" => Op::GSwitch(arg() as usize, arg() as u32),
            "gdrop" => Op::GDrop(arg() as usize),
            _ => panic!("unknown operation {s:?}"),
        }
    };
    let program: Program = text
        .split('|')
        .map(|script| {
            script
                .split(',')
                .filter(|s| !s.is_empty())
                .map(op)
                .collect()
        })
        .collect();
    assert_eq!(program.len(), ACTORS, "{text:?}: not {ACTORS} scripts");
    program
}
