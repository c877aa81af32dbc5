//! A bounded map with first-in-first-out eviction.
//!
//! FIFO rather than LRU keeps a hit free of bookkeeping (one hash lookup), and the bound is what
//! matters: an attacker sending distinct tokens can only ever evict, never grow memory.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// A map holding at most `capacity` entries.
#[derive(Debug)]
pub struct FifoCache<K, V> {
    capacity: usize,
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone, V> FifoCache<K, V> {
    /// An empty cache; a capacity of zero disables caching.
    pub fn new(capacity: usize) -> Self {
        FifoCache {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The value for `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }

    /// Whether caching is on (a capacity above zero), whatever the cache holds right now.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Inserts, evicting the oldest entries beyond the capacity.
    pub fn insert(&mut self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.map.remove(&oldest);
                }
                None => break,
            }
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_oldest_beyond_capacity() {
        let mut cache = FifoCache::new(2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.insert("c", 3);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("c"), Some(&3));
    }

    #[test]
    fn zero_capacity_stores_nothing() {
        let mut cache = FifoCache::new(0);
        cache.insert("a", 1);
        assert!(cache.is_empty());
    }

    #[test]
    fn reinserting_a_key_does_not_grow_the_order() {
        let mut cache = FifoCache::new(2);
        for i in 0..1000 {
            cache.insert(i % 2, i);
        }
        assert_eq!(cache.order.len(), 2);
        assert_eq!(cache.get(&1), Some(&999));
    }
}
