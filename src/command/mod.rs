//! placeholder until the command module lands
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Spec,
    Implement { force: bool },
    Revise { feedback: String },
    Cancel,
    Help,
}
impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/x")
    }
}
#[derive(Debug, Default)]
pub struct Parsed {
    pub commands: Vec<Command>,
    pub errors: Vec<String>,
}
pub fn parse(_b: &str) -> Parsed {
    Parsed::default()
}
pub fn added_by_edit(_a: &str, _b: &str) -> Parsed {
    Parsed::default()
}
pub fn help_text() -> &'static str {
    ""
}
