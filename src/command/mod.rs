//! The comment grammar: slash commands, parsed into a typed AST with friendly errors.
