//! Scoring: declarative point rules giving a score, a grade and a lifecycle state.
//!
//! ```toml
//! [scoring]
//! grades = [{ grade = "A", min = 100 }, { grade = "B", min = 50 }, { grade = "C", min = 0 }]
//! states = [{ state = "qualified", min = 100 }]
//! [[scoring.rule]]
//! when = "has(lead.phone) && has(lead.email)"
//! points = 60
//! ```

use serde::Deserialize;

use crate::route::filter::{Condition, Facts};

/// `[scoring]` as written in `routes.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringFile {
    /// Point rules, all evaluated; matching rules add their points.
    pub rule: Vec<RuleFile>,
    /// Grades from the highest `min` down; the first reached is the lead's grade.
    pub grades: Vec<GradeFile>,
    /// Lifecycle states reached at a score (the classic: 100 points = qualified).
    pub states: Vec<StateFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// A CEL condition (see `route::filter`).
    pub when: String,
    /// Points added when it matches (negative to subtract).
    pub points: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradeFile {
    pub grade: String,
    pub min: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    pub state: String,
    pub min: i64,
}

/// Compiled scoring rules.
#[derive(Debug, Clone, Default)]
pub struct Scoring {
    rules: Vec<(Condition, i64)>,
    /// Sorted by `min`, highest first.
    grades: Vec<(String, i64)>,
    states: Vec<(String, i64)>,
}

/// A lead's score.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Score {
    pub points: i64,
    pub grade: Option<String>,
    pub lifecycle: Option<String>,
}

impl Scoring {
    /// Compiles the rules; errors are `(field path, message)`.
    pub fn compile(file: &ScoringFile) -> Result<Scoring, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        for (i, r) in file.rule.iter().enumerate() {
            match Condition::compile(&r.when) {
                Ok(c) => rules.push((c, r.points)),
                Err(e) => errors.push((format!("scoring.rule[{i}].when"), e)),
            }
        }
        let mut grades: Vec<(String, i64)> = file.grades.iter().map(|g| (g.grade.clone(), g.min)).collect();
        grades.sort_by_key(|g| std::cmp::Reverse(g.1));
        let mut states: Vec<(String, i64)> = file.states.iter().map(|s| (s.state.clone(), s.min)).collect();
        states.sort_by_key(|s| std::cmp::Reverse(s.1));
        if errors.is_empty() { Ok(Scoring { rules, grades, states }) } else { Err(errors) }
    }

    /// Whether there are point rules at all (without, every lead scores 0).
    pub fn has_rules(&self) -> bool {
        !self.rules.is_empty()
    }

    /// Scores a lead. `facts` need not carry a score yet (rules see `score` = 0).
    pub fn score(&self, facts: &Facts) -> Score {
        let points = self.rules.iter().filter(|(c, _)| c.matches(facts)).map(|(_, p)| *p).sum();
        self.grade(points)
    }

    /// Grade and lifecycle for `points`.
    pub fn grade(&self, points: i64) -> Score {
        let pick =
            |list: &[(String, i64)]| list.iter().find(|(_, min)| points >= *min).map(|(n, _)| n.clone());
        Score { points, grade: pick(&self.grades), lifecycle: pick(&self.states) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::Lead;

    #[test]
    fn points_add_up_to_a_grade_and_a_state() {
        let file: ScoringFile = toml::from_str(
            r#"
            grades = [{ grade = "B", min = 50 }, { grade = "A", min = 100 }]
            states = [{ state = "qualified", min = 100 }]
            [[rule]]
            when = "has(lead.email)"
            points = 60
            [[rule]]
            when = "has(lead.phone)"
            points = 40
            [[rule]]
            when = "lead.state == 'AK'"
            points = -500
            "#,
        )
        .unwrap();
        let s = Scoring::compile(&file).unwrap();
        let lead =
            Lead { email: Some("a@b.co".into()), phone: Some("+14155550100".into()), ..Lead::default() };
        let score = s.score(&Facts::new(&lead, "x", 0, None));
        assert_eq!(
            score,
            Score { points: 100, grade: Some("A".into()), lifecycle: Some("qualified".into()) }
        );
        let lead = Lead { email: Some("a@b.co".into()), ..Lead::default() };
        let score = s.score(&Facts::new(&lead, "x", 0, None));
        assert_eq!(score, Score { points: 60, grade: Some("B".into()), lifecycle: None });
    }

    #[test]
    fn a_bad_rule_is_named() {
        let file: ScoringFile = toml::from_str("[[rule]]\nwhen = \"lead.x ==\"\npoints = 1\n").unwrap();
        let errs = Scoring::compile(&file).unwrap_err();
        assert_eq!(errs[0].0, "scoring.rule[0].when");
    }
}
