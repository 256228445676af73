//! GitHub client
