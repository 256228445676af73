//! The artifact files a spec PR may carry beside the spec, and how they are named.
//!
//! Owns: [`ArtifactKind`] and [`Artifacts`].
//!
//! **Naming**: an artifact sits next to the spec; its name is the spec path without its
//! extension plus a fixed suffix: `specs/IMPLEMENT-7.md` →
//! `specs/IMPLEMENT-7.diagram.mmd`, `specs/IMPLEMENT-7.openapi.yaml`,
//! `specs/IMPLEMENT-7.test-plan.md`, `specs/IMPLEMENT-7.rollout.md`.

use serde::{Deserialize, Serialize};

/// An optional artifact of a spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// A Mermaid diagram (`.diagram.mmd`).
    Diagram,
    /// An OpenAPI 3.1 description (`.openapi.yaml`).
    OpenApi,
    /// A test plan (`.test-plan.md`).
    TestPlan,
    /// A rollout plan (`.rollout.md`).
    RolloutPlan,
}

impl ArtifactKind {
    pub const ALL: [ArtifactKind; 4] = [
        ArtifactKind::Diagram,
        ArtifactKind::OpenApi,
        ArtifactKind::TestPlan,
        ArtifactKind::RolloutPlan,
    ];

    /// The key used in the repository config, the tool schema and the answer's tag names.
    pub fn key(self) -> &'static str {
        match self {
            ArtifactKind::Diagram => "diagram",
            ArtifactKind::OpenApi => "openapi",
            ArtifactKind::TestPlan => "test_plan",
            ArtifactKind::RolloutPlan => "rollout_plan",
        }
    }

    pub fn from_key(key: &str) -> Option<ArtifactKind> {
        ArtifactKind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The file-name suffix that replaces the spec's extension.
    pub fn suffix(self) -> &'static str {
        match self {
            ArtifactKind::Diagram => "diagram.mmd",
            ArtifactKind::OpenApi => "openapi.yaml",
            ArtifactKind::TestPlan => "test-plan.md",
            ArtifactKind::RolloutPlan => "rollout.md",
        }
    }

    /// The artifact's path for a spec path (see the module docs).
    pub fn path_for(self, spec_path: &str) -> String {
        let (dir, name) = match spec_path.rsplit_once('/') {
            Some((dir, name)) => (Some(dir), name),
            None => (None, spec_path),
        };
        let stem = match name.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem,
            _ => name,
        };
        match dir {
            Some(dir) => format!("{dir}/{stem}.{}", self.suffix()),
            None => format!("{stem}.{}", self.suffix()),
        }
    }

    /// A short human name.
    pub fn title(self) -> &'static str {
        match self {
            ArtifactKind::Diagram => "Mermaid diagram",
            ArtifactKind::OpenApi => "OpenAPI 3.1 description",
            ArtifactKind::TestPlan => "Test plan",
            ArtifactKind::RolloutPlan => "Rollout plan",
        }
    }

    /// What the architect is asked to put in it.
    pub fn instructions(self) -> &'static str {
        match self {
            ArtifactKind::Diagram => {
                "A Mermaid architecture diagram of the design (a C4 context/container view or a flowchart; sequence diagrams for important interactions). Only Mermaid source, starting with the diagram type (for example `flowchart TD`)."
            }
            ArtifactKind::OpenApi => {
                "An OpenAPI 3.1 description, in YAML, of the HTTP API this feature adds or changes: `openapi: 3.1.0`, `info`, `paths` with request and response schemas, error responses, pagination and authentication where they apply."
            }
            ArtifactKind::TestPlan => {
                "A test plan in markdown: unit test scenarios and what they mock, integration tests, end-to-end user journeys, performance benchmarks and security test scenarios, each tied to the acceptance criteria it proves."
            }
            ArtifactKind::RolloutPlan => {
                "A rollout plan in markdown: feature flags, phases or canary percentages, data migration and backfill, the metrics and alerts to watch, rollback triggers and the rollback procedure."
            }
        }
    }
}

/// The artifact texts of an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagram: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openapi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_plan: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_plan: Option<String>,
}

impl Artifacts {
    pub fn get(&self, kind: ArtifactKind) -> Option<&str> {
        match kind {
            ArtifactKind::Diagram => self.diagram.as_deref(),
            ArtifactKind::OpenApi => self.openapi.as_deref(),
            ArtifactKind::TestPlan => self.test_plan.as_deref(),
            ArtifactKind::RolloutPlan => self.rollout_plan.as_deref(),
        }
    }

    pub fn get_mut(&mut self, kind: ArtifactKind) -> &mut Option<String> {
        match kind {
            ArtifactKind::Diagram => &mut self.diagram,
            ArtifactKind::OpenApi => &mut self.openapi,
            ArtifactKind::TestPlan => &mut self.test_plan,
            ArtifactKind::RolloutPlan => &mut self.rollout_plan,
        }
    }

    /// The present artifacts, in [`ArtifactKind::ALL`] order.
    pub fn present(&self) -> Vec<(ArtifactKind, &str)> {
        ArtifactKind::ALL
            .into_iter()
            .filter_map(|k| self.get(k).map(|t| (k, t)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths() {
        let cases = [
            (
                "specs/IMPLEMENT-7.md",
                ArtifactKind::Diagram,
                "specs/IMPLEMENT-7.diagram.mmd",
            ),
            (
                "specs/IMPLEMENT-7.md",
                ArtifactKind::OpenApi,
                "specs/IMPLEMENT-7.openapi.yaml",
            ),
            (
                "specs/IMPLEMENT-7.md",
                ArtifactKind::TestPlan,
                "specs/IMPLEMENT-7.test-plan.md",
            ),
            (
                "specs/IMPLEMENT-7.md",
                ArtifactKind::RolloutPlan,
                "specs/IMPLEMENT-7.rollout.md",
            ),
            (
                "docs/specs/7.md",
                ArtifactKind::Diagram,
                "docs/specs/7.diagram.mmd",
            ),
            (
                "IMPLEMENT-7",
                ArtifactKind::OpenApi,
                "IMPLEMENT-7.openapi.yaml",
            ),
            (
                "a.b/.hidden",
                ArtifactKind::TestPlan,
                "a.b/.hidden.test-plan.md",
            ),
        ];
        for (spec, kind, want) in cases {
            assert_eq!(kind.path_for(spec), want);
        }
    }

    #[test]
    fn keys_round_trip() {
        for kind in ArtifactKind::ALL {
            assert_eq!(ArtifactKind::from_key(kind.key()), Some(kind));
        }
        assert_eq!(ArtifactKind::from_key("video"), None);
    }
}
