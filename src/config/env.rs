//! `${ENV}` and `${ENV:-default}` references in config strings.
//!
//! Secrets never live in the config files: operators write a reference and the value
//! comes from the environment at load time. Substitution happens while the TOML is
//! deserialized, so a missing variable is reported with the file, line and key.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

thread_local! {
    /// An environment to use instead of the process's (tests, `check --env`).
    static OVERRIDE: RefCell<Option<HashMap<String, String>>> = const { RefCell::new(None) };
}

/// Runs `f` with `vars` as the environment seen by config interpolation.
pub fn with_env<T>(vars: HashMap<String, String>, f: impl FnOnce() -> T) -> T {
    let previous = OVERRIDE.with(|o| o.replace(Some(vars)));
    let out = f();
    OVERRIDE.with(|o| *o.borrow_mut() = previous);
    out
}

fn lookup(name: &str) -> Option<String> {
    OVERRIDE.with(|o| match &*o.borrow() {
        Some(vars) => vars.get(name).cloned(),
        None => std::env::var(name).ok(),
    })
}

/// What [`interpolate`] made of a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    pub value: String,
    /// At least one `${…}` reference was used (secrets must come from one).
    pub from_env: bool,
    /// A reference fell back to its `:-default` (worth a warning for secrets).
    pub defaulted: bool,
    /// The variable of the first reference that fell back, so a warning can name it.
    pub defaulted_var: Option<String>,
}

/// Replaces every `${NAME}` / `${NAME:-default}` in `raw`.
pub fn interpolate(raw: &str) -> Result<Interpolated, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    let mut used = false;
    let mut defaulted = false;
    let mut defaulted_var = None;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unterminated `${{` in {raw:?}"))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{inner}}}` is not a valid environment reference"));
        }
        let value = match (lookup(name), default) {
            (Some(v), None) => v,
            (Some(v), Some(_)) if !v.is_empty() => v,
            (_, Some(d)) => {
                defaulted = true;
                defaulted_var.get_or_insert_with(|| name.to_string());
                d.to_string()
            }
            (None, None) => return Err(format!("environment variable {name} is not set")),
        };
        out.push_str(&value);
        used = true;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Interpolated { value: out, from_env: used, defaulted, defaulted_var })
}

/// A config string with `${ENV}` references resolved.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct EnvString {
    value: String,
    /// The value came (at least partly) from the environment.
    from_env: bool,
    /// The variable whose reference fell back to its default, if one did.
    defaulted: Option<String>,
}

impl EnvString {
    pub fn literal(value: impl Into<String>) -> Self {
        Self { value: value.into(), from_env: false, defaulted: None }
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }

    pub fn from_env(&self) -> bool {
        self.from_env
    }

    pub fn defaulted(&self) -> bool {
        self.defaulted.is_some()
    }

    /// The environment variable to set to replace the default this value fell back to.
    pub fn defaulted_var(&self) -> Option<&str> {
        self.defaulted.as_deref()
    }
}

impl fmt::Debug for EnvString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from_env { f.write_str("\"${…}\"") } else { write!(f, "{:?}", self.value) }
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        let i = interpolate(&raw).map_err(serde::de::Error::custom)?;
        Ok(Self { value: i.value, from_env: i.from_env, defaulted: i.defaulted_var })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn references_are_replaced_with_defaults_when_unset() {
        with_env(env(&[("A", "1")]), || {
            let i = interpolate("x${A}y").unwrap();
            assert_eq!((i.value.as_str(), i.from_env, i.defaulted), ("x1y", true, false));
            let i = interpolate("${B:-dflt}").unwrap();
            assert_eq!((i.value.as_str(), i.from_env, i.defaulted), ("dflt", true, true));
            assert_eq!(i.defaulted_var.as_deref(), Some("B"), "a warning can name the variable to set");
            let i = interpolate("plain").unwrap();
            assert_eq!((i.value.as_str(), i.from_env), ("plain", false));
            assert!(interpolate("${B}").unwrap_err().contains("B is not set"));
            assert!(interpolate("${A").is_err());
            assert!(interpolate("${a b}").is_err());
        });
    }

    #[test]
    fn an_empty_variable_falls_back_to_the_default() {
        with_env(env(&[("A", "")]), || {
            assert_eq!(interpolate("${A:-d}").unwrap().value, "d");
            assert_eq!(interpolate("${A}").unwrap().value, "");
        });
    }
}
