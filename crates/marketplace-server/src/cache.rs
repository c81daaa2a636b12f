//! A map held within a byte budget, for what the server derives from its backends and keeps in
//! memory (Cargo index files, rendered readmes): past the budget, entries are dropped (any,
//! until a quarter is free) and built again when asked for.

use std::collections::HashMap;
use std::sync::Arc;

/// What keeping a value costs, roughly, in bytes.
pub(crate) trait Cost {
    /// The bytes the value holds.
    fn cost(&self) -> usize;
}

/// Entries by key, with what they cost in all.
#[derive(Debug)]
pub(crate) struct Bounded<V> {
    entries: HashMap<String, Arc<V>>,
    bytes: usize,
    budget: usize,
}

/// Per entry, beside its value and key: the map's own bookkeeping.
const OVERHEAD: usize = 64;

impl<V: Cost> Bounded<V> {
    /// An empty map that holds at most `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        Bounded {
            entries: HashMap::new(),
            bytes: 0,
            budget,
        }
    }

    fn cost_of(key: &str, value: &V) -> usize {
        value.cost() + key.len() + OVERHEAD
    }

    /// The entry of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<V>> {
        self.entries.get(key).cloned()
    }

    /// Drops the entry of `key`.
    pub(crate) fn remove(&mut self, key: &str) {
        if let Some(value) = self.entries.remove(key) {
            self.bytes -= Self::cost_of(key, &value);
        }
    }

    /// Keeps `value` under `key`, dropping others first when the budget would be exceeded.
    pub(crate) fn insert(&mut self, key: String, value: Arc<V>) {
        self.remove(&key);
        let cost = Self::cost_of(&key, &value);
        if self.bytes + cost > self.budget {
            let goal = self.budget / 4 * 3;
            let doomed: Vec<String> = self
                .entries
                .iter()
                .scan(self.bytes, |left, (key, value)| {
                    (*left > goal).then(|| {
                        *left -= Self::cost_of(key, value);
                        key.clone()
                    })
                })
                .collect();
            for key in doomed {
                self.remove(&key);
            }
        }
        self.bytes += cost;
        self.entries.insert(key, value);
    }

    /// Drops every entry.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Cost for Vec<u8> {
        fn cost(&self) -> usize {
            self.len()
        }
    }

    #[test]
    fn the_map_stays_within_its_budget_and_counts_what_it_drops() {
        let mut map = Bounded::new(10_000);
        for i in 0..100 {
            map.insert(format!("entry-{i}"), Arc::new(vec![b'x'; 500]));
            assert!(map.bytes() <= 10_000, "{} bytes", map.bytes());
        }
        assert!(map.len() < 100 && map.len() > 0);
        let counted: usize = map
            .entries
            .iter()
            .map(|(k, v)| Bounded::cost_of(k, v.as_ref()))
            .sum();
        assert_eq!(counted, map.bytes());
        map.insert("entry-99".into(), Arc::new(Vec::new()));
        for key in map.entries.keys().cloned().collect::<Vec<_>>() {
            map.remove(&key);
        }
        assert_eq!(map.bytes(), 0);
        assert!(map.get("entry-99").is_none());
    }
}
