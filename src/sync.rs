//! The locks the registry and the engine use: parking_lot's normally, loom's under `cfg(loom)`
//! so the model checker can explore every interleaving (loom cannot model
//! parking_lot). Only this module names either crate.

#[cfg(not(loom))]
mod imp {
    pub use parking_lot::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

    /// A mutual-exclusion lock.
    #[derive(Debug, Default)]
    pub struct Mutex<T>(parking_lot::Mutex<T>);

    impl<T> Mutex<T> {
        /// A new lock.
        pub fn new(v: T) -> Self {
            Mutex(parking_lot::Mutex::new(v))
        }
        /// Exclusive access.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A reader-writer lock.
    #[derive(Debug, Default)]
    pub struct RwLock<T>(parking_lot::RwLock<T>);

    impl<T> RwLock<T> {
        /// A new lock.
        pub fn new(v: T) -> Self {
            RwLock(parking_lot::RwLock::new(v))
        }
        /// Shared access.
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read()
        }
        /// Exclusive access.
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write()
        }
    }

    pub use std::sync::atomic::{AtomicU64, Ordering};
}

#[cfg(loom)]
mod imp {
    pub use loom::sync::{MutexGuard, RwLockReadGuard, RwLockWriteGuard};

    /// A mutual-exclusion lock (loom's model).
    #[derive(Debug)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        /// A new lock.
        pub fn new(v: T) -> Self {
            Mutex(loom::sync::Mutex::new(v))
        }
        /// Exclusive access.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// A reader-writer lock (loom's model).
    #[derive(Debug)]
    pub struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        /// A new lock.
        pub fn new(v: T) -> Self {
            RwLock(loom::sync::RwLock::new(v))
        }
        /// Shared access.
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }
        /// Exclusive access.
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }

    pub use loom::sync::atomic::{AtomicU64, Ordering};
}

pub use imp::*;
