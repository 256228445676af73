//! Prompt templates and the repository context gatherer.
