//! The stack summary of a dump: for each name (or, for unnamed fibers,
//! each spawn site), the deepest any of its fibers went, and what a
//! smaller stack would save.
//!
//! The advice takes twice the deepest use, rounded up to a power of two
//! and to at least [`Stack::MIN_SIZE`]: headroom for paths the fibers have
//! not taken yet. What it saves is address space (and the page-table and
//! pool room that goes with it), not resident memory, which only touched
//! pages cost.

use std::collections::BTreeMap;
use std::fmt;

use crate::stack::Stack;

use super::{Bytes, Dump};

/// One line of [`Dump::stack_summary`]: the fibers of one name.
///
/// # Examples
///
/// ```
/// spindle::stack::set_high_water_tracking(true);
/// spindle::run(|| {
///     let hs: Vec<_> = (0..3)
///         .map(|_| {
///             spindle::Builder::new().name("conn".into()).spawn(|| spindle::yield_now()).unwrap()
///         })
///         .collect();
///     spindle::yield_now();
///     let dump = spindle::dump();
///     let conn = dump.stack_summary().into_iter().find(|s| s.name() == "conn").unwrap();
///     assert_eq!(conn.fibers(), 3);
///     assert!(conn.deepest() < conn.stack_size());
///     println!("{conn}"); // fibers named "conn" (3) used at most 1.2 KiB of 256.0 KiB; ...
///     spindle::join_all(hs);
/// });
/// ```
#[derive(Clone, Debug)]
pub struct StackSummary {
    name: String,
    named: bool,
    fibers: usize,
    deepest: usize,
    exact: bool,
    stack_size: usize,
}

impl StackSummary {
    /// The fibers' name, or `spawned at file:line:col` for unnamed ones.
    ///
    /// ```
    /// # spindle::run(|| {
    /// for s in spindle::dump().stack_summary() {
    ///     println!("{}", s.name());
    /// }
    /// # });
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many fibers of that name the dump holds (with a measured stack).
    ///
    /// ```
    /// # spindle::run(|| {
    /// let main = spindle::dump().stack_summary().into_iter().find(|s| s.name() == "main").unwrap();
    /// assert_eq!(main.fibers(), 1);
    /// # });
    /// ```
    pub fn fibers(&self) -> usize {
        self.fibers
    }

    /// The deepest high-water mark among them, in bytes.
    ///
    /// ```
    /// # spindle::run(|| {
    /// let main = spindle::dump().stack_summary().into_iter().find(|s| s.name() == "main").unwrap();
    /// assert!(main.deepest() > 0);
    /// # });
    /// ```
    pub fn deepest(&self) -> usize {
        self.deepest
    }

    /// The largest stack size among them.
    ///
    /// ```
    /// # spindle::run(|| {
    /// let main = spindle::dump().stack_summary().into_iter().find(|s| s.name() == "main").unwrap();
    /// assert_eq!(main.stack_size(), spindle::stack::Stack::DEFAULT_SIZE);
    /// # });
    /// ```
    pub fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// The stack size the advice proposes: twice the deepest use, rounded
    /// up to a power of two, at least [`Stack::MIN_SIZE`]; `None` if that
    /// is not smaller than what they have.
    ///
    /// ```
    /// # spindle::run(|| {
    /// let main = spindle::dump().stack_summary().into_iter().find(|s| s.name() == "main").unwrap();
    /// assert!(main.suggested_size().unwrap() < main.stack_size());
    /// # });
    /// ```
    pub fn suggested_size(&self) -> Option<usize> {
        let size = (self.deepest * 2).next_power_of_two().max(Stack::MIN_SIZE);
        (size < self.stack_size).then_some(size)
    }
}

impl fmt::Display for StackSummary {
    /// `fibers named "conn" (10000) used at most 9.1 KiB of 256.0 KiB; a
    /// 32.0 KiB stack would save 224.0 KiB each, 2.1 GiB at 10,000 fibers`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.named {
            write!(f, "fibers named {:?}", self.name)?;
        } else {
            write!(f, "unnamed fibers {}", self.name)?;
        }
        let bound = if self.exact { "" } else { " (an upper bound)" };
        write!(
            f,
            " ({}) used at most {}{bound} of {}",
            self.fibers,
            Bytes(self.deepest),
            Bytes(self.stack_size)
        )?;
        if let Some(size) = self.suggested_size() {
            let each = self.stack_size - size;
            write!(
                f,
                "; a {} stack would save {} of address space each, {} at 10,000 fibers",
                Bytes(size),
                Bytes(each),
                Bytes(each * 10_000)
            )?;
        }
        Ok(())
    }
}

impl Dump {
    /// For each fiber name (unnamed fibers: each spawn site), the deepest
    /// stack use and a smaller stack size to try, largest reservation
    /// first; see [`StackSummary`]. `Display` on the dump ends with it.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| {
    ///     let summary = spindle::dump().stack_summary();
    ///     assert_eq!(summary[0].name(), "main");
    /// });
    /// ```
    pub fn stack_summary(&self) -> Vec<StackSummary> {
        let mut by: BTreeMap<(bool, String), StackSummary> = BTreeMap::new();
        for fd in &self.fibers {
            let Some(hw) = fd.high_water else {
                continue;
            };
            let key = match fd.name() {
                Some(n) => (true, n.to_string()),
                None => (false, format!("spawned at {}", fd.spawned_at)),
            };
            let s = by.entry(key.clone()).or_insert(StackSummary {
                name: key.1,
                named: key.0,
                fibers: 0,
                deepest: 0,
                exact: true,
                stack_size: 0,
            });
            s.fibers += 1;
            s.deepest = s.deepest.max(hw.bytes());
            s.exact &= hw.is_exact();
            s.stack_size = s.stack_size.max(fd.stack_size);
        }
        let mut out: Vec<StackSummary> = by.into_values().collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.fibers * s.stack_size));
        out
    }
}
