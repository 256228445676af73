//! Prompt templates and the repository context gatherer.
//!
//! Owns: sanitising and fencing untrusted text ([`sanitize`]), choosing and budgeting the
//! repository context ([`context`], with the small glob matcher in [`glob`]), and rendering the
//! architect, engineer, revise and CI-fix prompts ([`templates`]). Pure: no network, no files,
//! no model calls — callers fetch, this module shapes strings.

pub mod context;
pub mod glob;
pub mod sanitize;
pub mod templates;
