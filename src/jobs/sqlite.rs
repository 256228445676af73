//! SQLite implementation of [`super::Store`] (the default).
