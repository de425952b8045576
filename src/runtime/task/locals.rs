//! [`LocalMap`]: the values of one fiber's fiber-locals
//! (`spindle::fiber_local!`), hung off its task record.
//!
//! A small vector of (key, value) pairs: a fiber uses a handful of
//! fiber-locals at most, and a linear scan over a few entries beats a hash.
//! The key is the address of the `FiberLocal` static; a value is boxed, so
//! its address stays put while the vector grows. A pair whose value is
//! `None` is a value being initialised (its initialiser is running).
//!
//! The map never runs user code: it only moves boxes in and out, under
//! borrows that end before it returns. Entries are never removed one by one
//! while their fiber runs, except a `None` placeholder whose initialiser
//! unwound; the whole map is taken out when the fiber ends.

use std::any::Any;
use std::cell::RefCell;

/// One fiber's fiber-local values; see the [module docs](self).
#[derive(Default)]
pub(crate) struct LocalMap {
    entries: RefCell<Vec<Entry>>,
}

/// A key and its value (`None` while being initialised).
type Entry = (usize, Option<Box<dyn Any>>);

/// What [`LocalMap::get`] finds under a key.
pub(crate) enum LocalSlot {
    /// No entry.
    Vacant,
    /// The initialiser is running.
    Initialising,
    /// The value, at a stable address.
    Value(*const dyn Any),
}

impl LocalMap {
    /// The entry under `key`.
    pub(crate) fn get(&self, key: usize) -> LocalSlot {
        match self.entries.borrow().iter().find(|(k, _)| *k == key) {
            None => LocalSlot::Vacant,
            Some((_, None)) => LocalSlot::Initialising,
            Some((_, Some(v))) => LocalSlot::Value(&**v as *const dyn Any),
        }
    }

    /// Marks `key` as being initialised.
    pub(crate) fn reserve(&self, key: usize) {
        self.entries.borrow_mut().push((key, None));
    }

    /// Stores the value of a reserved `key`; returns its stable address.
    pub(crate) fn fill(&self, key: usize, value: Box<dyn Any>) -> *const dyn Any {
        let ptr = &*value as *const dyn Any;
        if let Some(e) = self
            .entries
            .borrow_mut()
            .iter_mut()
            .find(|(k, _)| *k == key)
        {
            e.1 = Some(value);
        }
        ptr
    }

    /// Removes the placeholder of `key` (its initialiser unwound).
    pub(crate) fn unreserve(&self, key: usize) {
        self.entries
            .borrow_mut()
            .retain(|(k, v)| *k != key || v.is_some());
    }

    /// Every value, most recently initialised first (the order to drop
    /// them in, as a stack unwinds).
    pub(crate) fn into_values(self) -> Vec<Box<dyn Any>> {
        let mut values: Vec<Box<dyn Any>> = self
            .entries
            .into_inner()
            .into_iter()
            .filter_map(|(_, v)| v)
            .collect();
        values.reverse();
        values
    }
}
