//! HTTP edge
