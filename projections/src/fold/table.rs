//! `Table`: one read-model table's rows in memory, as a fold sees them.
//!
//! A table is either *complete* (a replay: it started empty, so a row it does not hold does
//! not exist) or partial (the live path: it holds what was loaded for a batch). A partial
//! table answers a read of a row or group it does not hold as absent and records it as
//! missing; the live path then loads what is missing and folds the batch again, until a pass
//! reads nothing it lacks (see `live`). Writes are remembered per key, so only the rows a
//! batch changed are written back.

use foldhash::{HashMap, HashSet};

use super::row::Row;

/// Whether a row is in the table's stored form (the database table the batch writes to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    Yes,
    No,
    Unknown,
}

#[derive(Debug, Clone)]
pub(crate) struct Slot<R> {
    pub(crate) row: Option<R>,
    pub(crate) stored: Stored,
    pub(crate) dirty: bool,
}

pub struct Table<R: Row> {
    pub(crate) slots: HashMap<R::Key, Slot<R>>,
    /// Keys of the rows in memory, by group.
    members: HashMap<R::Group, HashSet<R::Key>>,
    pub(crate) loaded_groups: HashSet<R::Group>,
    pub(crate) complete: bool,
    pub(crate) missing_keys: HashSet<R::Key>,
    pub(crate) missing_groups: HashSet<R::Group>,
    pub(crate) dirty: Vec<R::Key>,
}

impl<R: Row> Default for Table<R> {
    fn default() -> Self {
        Self {
            slots: HashMap::default(),
            members: HashMap::default(),
            loaded_groups: HashSet::default(),
            complete: false,
            missing_keys: HashSet::default(),
            missing_groups: HashSet::default(),
            dirty: Vec::new(),
        }
    }
}

impl<R: Row> Clone for Table<R> {
    fn clone(&self) -> Self {
        Self {
            slots: self.slots.clone(),
            members: self.members.clone(),
            loaded_groups: self.loaded_groups.clone(),
            complete: self.complete,
            missing_keys: self.missing_keys.clone(),
            missing_groups: self.missing_groups.clone(),
            dirty: self.dirty.clone(),
        }
    }
}

impl<R: Row> Table<R> {
    /// The row at `key`, if there is one.
    pub fn get(&mut self, key: &R::Key) -> Option<&R> {
        if !self.known(key) {
            return None;
        }
        self.slots.get(key).and_then(|slot| slot.row.as_ref())
    }

    /// Writes `row` (replacing the row at its key).
    pub fn put(&mut self, row: R) {
        let key = row.key();
        let group = row.group();
        let (stored, old_group) = match self.slots.get(&key) {
            Some(slot) => (slot.stored, slot.row.as_ref().and_then(Row::group)),
            None => (self.unseen(), None),
        };
        self.reindex(&key, old_group, group);
        self.set(key, Some(row), stored);
    }

    /// Writes `row` unless its key already has one; returns whether it did.
    pub fn put_if_absent(&mut self, row: R) -> bool {
        let key = row.key();
        if !self.known(&key) || self.slots.get(&key).is_some_and(|s| s.row.is_some()) {
            return false;
        }
        self.put(row);
        true
    }

    /// Changes the row at `key` in place, if there is one; returns whether there was.
    pub fn update(&mut self, key: &R::Key, change: impl FnOnce(&mut R)) -> bool {
        if !self.known(key) {
            return false;
        }
        let Some(row) = self.slots.get_mut(key).and_then(|slot| slot.row.as_mut()) else {
            return false;
        };
        let before = row.group();
        change(row);
        let after = row.group();
        if before != after {
            self.reindex(key, before, after);
        }
        self.mark_dirty(key);
        true
    }

    /// Deletes the row at `key` (whether or not there is one).
    pub fn remove(&mut self, key: &R::Key) {
        let (stored, old_group) = match self.slots.get(key) {
            Some(slot) => (slot.stored, slot.row.as_ref().and_then(Row::group)),
            None => (self.unseen(), None),
        };
        self.reindex(key, old_group, None);
        self.set(key.clone(), None, stored);
    }

    /// The keys of every row in `group`.
    pub fn group(&mut self, group: &R::Group) -> Vec<R::Key> {
        if !self.complete && !self.loaded_groups.contains(group) {
            self.missing_groups.insert(group.clone());
        }
        self.members
            .get(group)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Rows in memory (present ones).
    pub fn len(&self) -> usize {
        self.slots.values().filter(|s| s.row.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the table can answer for `key`; records it as missing when it cannot.
    fn known(&mut self, key: &R::Key) -> bool {
        if self.complete || self.slots.contains_key(key) {
            return true;
        }
        self.missing_keys.insert(key.clone());
        false
    }

    /// What is stored for a key the table has not seen: nothing, if the table is complete.
    fn unseen(&self) -> Stored {
        if self.complete {
            Stored::No
        } else {
            Stored::Unknown
        }
    }

    fn set(&mut self, key: R::Key, row: Option<R>, stored: Stored) {
        let slot = self.slots.entry(key.clone()).or_insert(Slot {
            row: None,
            stored,
            dirty: false,
        });
        slot.row = row;
        self.mark_dirty(&key);
    }

    fn mark_dirty(&mut self, key: &R::Key) {
        if let Some(slot) = self.slots.get_mut(key)
            && !slot.dirty
        {
            slot.dirty = true;
            self.dirty.push(key.clone());
        }
    }

    fn reindex(&mut self, key: &R::Key, old: Option<R::Group>, new: Option<R::Group>) {
        if old == new {
            return;
        }
        if let Some(old) = old
            && let Some(keys) = self.members.get_mut(&old)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.members.remove(&old);
            }
        }
        if let Some(new) = new {
            self.members.entry(new).or_default().insert(key.clone());
        }
    }

    /// Takes in a row as stored (loaded): not dirty.
    pub(crate) fn absorb_row(&mut self, row: R) {
        let key = row.key();
        if self.slots.contains_key(&key) {
            return;
        }
        if let Some(group) = row.group() {
            self.members.entry(group).or_default().insert(key.clone());
        }
        self.slots.insert(
            key,
            Slot {
                row: Some(row),
                stored: Stored::Yes,
                dirty: false,
            },
        );
    }

    /// Records that `key` was looked up and has no stored row.
    pub(crate) fn absorb_absent(&mut self, key: R::Key) {
        self.slots.entry(key).or_insert(Slot {
            row: None,
            stored: Stored::No,
            dirty: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Seat {
        seat: u32,
        holder: u32,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
    struct SeatKey {
        seat: u32,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
    struct Holder {
        holder: u32,
    }

    impl Row for Seat {
        const TABLE: &'static str = "seat";
        type Key = SeatKey;
        type Group = Holder;
        fn key(&self) -> SeatKey {
            SeatKey { seat: self.seat }
        }
        fn group(&self) -> Option<Holder> {
            Some(Holder {
                holder: self.holder,
            })
        }
    }

    fn seat(seat: u32, holder: u32) -> Seat {
        Seat { seat, holder }
    }

    #[test]
    fn a_partial_table_answers_unloaded_rows_as_absent_and_records_them_missing() {
        let mut table = Table::<Seat>::default();
        assert_eq!(table.get(&SeatKey { seat: 1 }), None);
        assert!(table.group(&Holder { holder: 7 }).is_empty());
        assert!(table.missing_keys.contains(&SeatKey { seat: 1 }));
        assert!(table.missing_groups.contains(&Holder { holder: 7 }));
    }

    #[test]
    fn a_complete_table_knows_every_row_and_misses_nothing() {
        let mut table = Table::<Seat> {
            complete: true,
            ..Default::default()
        };
        assert_eq!(table.get(&SeatKey { seat: 1 }), None);
        assert!(table.group(&Holder { holder: 7 }).is_empty());
        assert!(table.missing_keys.is_empty() && table.missing_groups.is_empty());
    }

    #[test]
    fn groups_follow_rows_that_change_group() {
        let mut table = Table::<Seat> {
            complete: true,
            ..Default::default()
        };
        table.put(seat(1, 7));
        table.put(seat(2, 7));
        table.update(&SeatKey { seat: 2 }, |s| s.holder = 8);
        table.remove(&SeatKey { seat: 1 });
        assert!(table.group(&Holder { holder: 7 }).is_empty());
        assert_eq!(
            table.group(&Holder { holder: 8 }),
            vec![SeatKey { seat: 2 }]
        );
    }

    #[test]
    fn a_loaded_row_is_clean_until_changed_and_is_then_written_once() {
        let mut table = Table::<Seat>::default();
        table.absorb_row(seat(1, 7));
        table.absorb_absent(SeatKey { seat: 2 });
        assert!(table.dirty.is_empty());
        table.update(&SeatKey { seat: 1 }, |s| s.holder = 9);
        table.update(&SeatKey { seat: 1 }, |s| s.holder = 10);
        assert!(!table.put_if_absent(seat(1, 11)), "seat 1 is taken");
        assert!(
            table.put_if_absent(seat(2, 12)),
            "seat 2 was looked up: free"
        );
        assert_eq!(table.dirty, vec![SeatKey { seat: 1 }, SeatKey { seat: 2 }]);
        assert!(table.missing_keys.is_empty());
    }
}
