//! Test support shared by the end-to-end suites: a fresh database per test, the GitHub world,
//! the LLM fake, and the fluent tester that drives them through the real router.
#![allow(dead_code)]

pub mod answers;
pub mod browser;
pub mod db;
pub mod github_world;
pub mod llm_fake;
pub mod tester;
