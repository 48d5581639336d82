//! Conditions in CEL (the Common Expression Language that Kubernetes and Envoy use for
//! such rules), compiled once per config load and evaluated per lead.
//!
//! Variables: `lead` (the canonical fields as a map, `lead.custom` for custom fields),
//! `source`, `product`, `score` (int), `grade`. A field the lead does not have is absent
//! from the map: test it with `has(lead.state)`. An expression that fails at run time
//! (a missing field, a type mismatch) or is not a boolean counts as *not matching*.

use std::sync::Arc;

use cel::{Context, Program, Value};

use crate::lead::Lead;

/// A compiled condition.
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<Program>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Condition({:?})", self.source)
    }
}

impl Condition {
    /// Compiles `source`; the error names line, column and the parser's message.
    pub fn compile(source: &str) -> Result<Condition, String> {
        let program = std::panic::catch_unwind(|| Program::compile(source))
            .map_err(|_| format!("cannot compile {source:?}"))?
            .map_err(|errors| {
                errors
                    .errors
                    .iter()
                    .map(|e| format!("line {}, column {}: {}", e.pos.0.max(1), e.pos.1.max(1), e.msg))
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
        Ok(Condition { source: source.to_string(), program: Arc::new(program) })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the expression evaluates to `true` for `facts`.
    pub fn matches(&self, facts: &Facts) -> bool {
        match self.program.execute(&facts.context) {
            Ok(Value::Bool(b)) => b,
            Ok(other) => {
                tracing::debug!(condition = %self.source, value = ?other, "Condition is not a boolean; not matching.");
                false
            }
            Err(e) => {
                tracing::debug!(condition = %self.source, error.message = %e, "Condition failed to evaluate; not matching.");
                false
            }
        }
    }
}

/// What conditions can see about one lead, built once and shared by every condition.
pub struct Facts {
    context: Context<'static, 'static>,
}

impl Facts {
    pub fn new(lead: &Lead, source: &str, score: i64, grade: Option<&str>) -> Facts {
        // The standard library's declarations are the same for every lead: building them
        // (what `Context::default()` does) per lead was a large part of a lead's CPU time.
        static STDLIB: std::sync::LazyLock<std::sync::Arc<cel::Env>> =
            std::sync::LazyLock::new(|| std::sync::Arc::new(cel::Env::stdlib()));
        let mut context = Context::with_env(STDLIB.clone());
        // Straight from the lead to CEL values (its fields are strings, booleans and the
        // custom map's JSON, which convert the same either way), not through a JSON tree.
        add(&mut context, "lead", lead);
        add(&mut context, "source", &serde_json::Value::from(source));
        add(&mut context, "product", &serde_json::Value::from(lead.product.clone().unwrap_or_default()));
        let mut facts = Facts { context };
        facts.set_score(score, grade);
        facts
    }

    /// The lead's score and grade, once scoring (which sees them as 0 and "") is done: the
    /// same facts then serve routing, rather than converting the lead a second time.
    pub fn set_score(&mut self, score: i64, grade: Option<&str>) {
        add(&mut self.context, "score", &serde_json::Value::from(score));
        add(&mut self.context, "grade", &serde_json::Value::from(grade.unwrap_or_default()));
    }
}

fn add(context: &mut Context<'static, 'static>, name: &str, value: &impl serde::Serialize) {
    match cel::to_value(value) {
        Ok(v) => context.add_variable_from_value(name, v),
        Err(e) => tracing::warn!(variable = name, error.message = %e, "Cannot expose a value to conditions."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead() -> Lead {
        let mut l = Lead {
            state: Some("CA".into()),
            email: Some("a@example.com".into()),
            product: Some("solar".into()),
            ..Lead::default()
        };
        l.custom.insert("budget".into(), serde_json::json!(5000));
        l
    }

    #[test]
    fn conditions_see_fields_source_and_score() {
        let f = Facts::new(&lead(), "example", 120, Some("A"));
        let t = |s: &str| Condition::compile(s).unwrap().matches(&f);
        assert!(t("lead.state == 'CA'"));
        assert!(t("lead.state in ['CA', 'NV'] && score >= 100"));
        assert!(t("source == 'example' && product == 'solar'"));
        assert!(t("lead.custom.budget > 1000"));
        assert!(t("grade == 'A'"));
        assert!(!t("has(lead.phone)"));
        assert!(t("has(lead.email) && lead.email.endsWith('@example.com')"));
    }

    #[test]
    fn runtime_errors_and_non_booleans_do_not_match() {
        let f = Facts::new(&lead(), "example", 0, None);
        assert!(!Condition::compile("lead.phone == '1'").unwrap().matches(&f));
        assert!(!Condition::compile("score + 1").unwrap().matches(&f));
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let e = Condition::compile("lead.state == ").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        // `)` is the expression's 15th character: columns count from 1, as an editor's do.
        let e = Condition::compile("lead.state == )").unwrap_err();
        assert!(e.starts_with("line 1, column 15: "), "{e}");
    }
}
