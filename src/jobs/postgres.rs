//! PostgreSQL implementation of [`super::Store`] (several instances).
