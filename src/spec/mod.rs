//! The spec document: parsing the model answer, components, artifacts, validation.
