//! The task table: a generational slab of task records (the scheduler's `TaskRecord`s).
//!
//! A slab is a `Vec` of entries plus a free list of vacant indices. Inserting
//! reuses the most recently freed entry (its cache lines are the likeliest to
//! be warm) or pushes a new one; removing pushes the index on the free list.
//! Both are O(1) and allocate only when the `Vec`s grow.
//!
//! ## Invariants
//!
//! - A [`Key`] is an index and the generation the entry had when the value
//!   was inserted. Removing a value bumps the entry's generation, so a key
//!   kept after its value is gone (in a timer, a join slot, a message from
//!   another thread) finds nothing instead of finding a later task that
//!   reused the entry.
//! - `len` is the number of occupied entries; `free` holds exactly the
//!   indices of the vacant ones.
//! - Values never move while they are in the slab, except when `entries`
//!   grows. The scheduler therefore never keeps a reference into the slab
//!   across a switch: it moves a fiber out of its record before resuming it
//!   (see the scheduler's module docs).

/// Names one value of a [`Slab`]: index and generation. Plain data, `Send`,
/// so other threads can carry it (they hand it back; only the owning thread
/// looks it up).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Key {
    index: u32,
    generation: u32,
}

impl Key {
    /// A key no slab ever hands out (its index is `u32::MAX`, which
    /// [`Slab::insert`] refuses): a placeholder, e.g. for a run-queue entry
    /// that a hand-off emptied.
    pub(crate) const NONE: Key = Key {
        index: u32::MAX,
        generation: u32::MAX,
    };

    /// The entry's position: also the position of the task's fiber in the
    /// fiber table.
    #[inline]
    pub(crate) fn index(self) -> usize {
        self.index as usize
    }
}

struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// A generational slab; see the [module docs](self).
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Slab<T> {
    /// An empty slab; allocates nothing.
    pub(crate) const fn new() -> Slab<T> {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Stores `value` and returns its key.
    ///
    /// # Panics
    ///
    /// If the slab already holds `u32::MAX` entries.
    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let entry = &mut self.entries[index as usize];
            debug_assert!(entry.value.is_none());
            entry.value = Some(value);
            return Key {
                index,
                generation: entry.generation,
            };
        }
        // `u32::MAX` is `Key::NONE`'s index, never a task's.
        let index = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i != u32::MAX)
            .expect("more than 2^32 - 1 tasks in one runtime");
        self.entries.push(Entry {
            generation: 0,
            value: Some(value),
        });
        Key {
            index,
            generation: 0,
        }
    }

    /// The value under `key`, if it is still there.
    #[inline]
    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match self.entries.get(key.index as usize) {
            Some(e) if e.generation == key.generation => e.value.as_ref(),
            _ => None,
        }
    }

    /// The value under `key`, if it is still there.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.entries.get_mut(key.index as usize) {
            Some(e) if e.generation == key.generation => e.value.as_mut(),
            _ => None,
        }
    }

    /// Takes the value under `key` out; its key is dead from now on.
    #[inline]
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let entry = self.entries.get_mut(key.index as usize)?;
        if entry.generation != key.generation {
            return None;
        }
        let value = entry.value.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        Some(value)
    }

    /// Number of values stored.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every value with its key, in index order (not insertion order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.entries.iter().enumerate().filter_map(|(i, e)| {
            e.value.as_ref().map(|v| {
                (
                    Key {
                        index: i as u32,
                        generation: e.generation,
                    },
                    v,
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn stale_keys_find_nothing() {
        let mut s = Slab::new();
        let a = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_eq!(s.get(a), None, "a reused entry must not answer an old key");
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.len(), 1);
        assert_eq!(s.iter().map(|(_, v)| *v).collect::<Vec<_>>(), ["b"]);
    }
}
