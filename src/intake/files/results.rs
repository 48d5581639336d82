//! The results file a vendor gets back for each file: one line per row.
//!
//! Columns: `row` (the data row number, 1 = first row after the header), `outcome`
//! (`accepted`, `duplicate`, `rejected`; `failed` for a line about the file itself),
//! `lead_id` (the same id the admin API knows the lead by), `reasons` (why a row was
//! rejected: `field (column C "E-mail Address"): message`, `; `-separated),
//! `duplicate_of`, `warnings`, then the row's own cells under the file's header names,
//! so the vendor can read each answer beside the row it answers.
//!
//! Every cell goes through [`spreadsheet_safe`]: a vendor opening the results in a
//! spreadsheet never runs a formula that came from a lead (OWASP "CSV injection").

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::lead::Problem;
use crate::lead::normalize::{Aliases, Target};
use crate::parse::table::column_letter;
use crate::pipeline::LeadResult;

/// The fixed columns, before the echoed cells.
pub const COLUMNS: [&str; 6] = ["row", "outcome", "lead_id", "reasons", "duplicate_of", "warnings"];

/// Makes a cell inert in spreadsheets: a cell starting with `=`, `+`, `-`, `@`, tab or CR
/// is prefixed with `'`, which spreadsheets show but never evaluate. Use it for every
/// CSV cell leadgate writes that may hold data from outside.
pub fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// Which column of the file each canonical field came from, for reasons that point at
/// the vendor's own column.
#[derive(Debug, Clone, Default)]
pub struct ColumnIndex {
    by_field: HashMap<String, (usize, String)>,
}

impl ColumnIndex {
    pub fn new(columns: &[String], aliases: &Aliases) -> Self {
        let mut by_field = HashMap::new();
        let mut phones = 0;
        for (i, name) in columns.iter().enumerate() {
            let field = match aliases.resolve(name) {
                Some(Target::AnyPhone) => {
                    phones += 1;
                    if phones == 1 { "phone".to_owned() } else { "phone_2".to_owned() }
                }
                Some(t) => t.field_name(),
                None => name.clone(),
            };
            by_field.entry(field).or_insert_with(|| (i, name.clone()));
        }
        Self { by_field }
    }

    /// `email (column C "E-mail Address"): message`.
    pub fn describe(&self, p: &Problem) -> String {
        match self.by_field.get(&p.field) {
            Some((i, name)) => format!("{} (column {} {name:?}): {}", p.field, column_letter(*i), p.message),
            None => format!("{}: {}", p.field, p.message),
        }
    }

    pub fn describe_all(&self, problems: &[Problem]) -> String {
        problems.iter().map(|p| self.describe(p)).collect::<Vec<_>>().join("; ")
    }
}

/// Writes a results file beside its final name and moves it into place when complete,
/// so a vendor never downloads half of one.
pub struct ResultsWriter {
    out: csv::Writer<BufWriter<File>>,
    partial: PathBuf,
    path: PathBuf,
    columns: ColumnIndex,
    echo: usize,
}

impl ResultsWriter {
    /// Creates the file with its header: the fixed columns, then the file's own.
    pub fn create(path: &Path, header: &[String], columns: ColumnIndex) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("results.csv");
        let partial = path.with_file_name(format!(".{name}.partial"));
        let file = File::create(&partial)?;
        let mut out = csv::WriterBuilder::new().flexible(true).from_writer(BufWriter::new(file));
        let mut first: Vec<Cow<'_, str>> = COLUMNS.iter().map(|c| Cow::Borrowed(*c)).collect();
        first.extend(header.iter().map(|h| spreadsheet_safe(h)));
        out.write_record(first.iter().map(|c| c.as_bytes())).map_err(std::io::Error::other)?;
        Ok(Self { out, partial, path: path.to_path_buf(), columns, echo: header.len() })
    }

    /// One row's answer, with the row's cells.
    pub fn row(&mut self, number: u64, result: &LeadResult, cells: &[String]) -> std::io::Result<()> {
        let reasons = self.columns.describe_all(&result.reasons);
        let warnings = self.columns.describe_all(&result.warnings);
        let number = number.to_string();
        let fixed = [
            number.as_str(),
            result.outcome.as_str(),
            result.lead_id.as_str(),
            reasons.as_str(),
            result.duplicate_of.as_deref().unwrap_or(""),
            warnings.as_str(),
        ];
        let echo = cells.iter().take(self.echo.max(cells.len())).map(String::as_str);
        let record: Vec<Cow<'_, str>> = fixed.into_iter().chain(echo).map(spreadsheet_safe).collect();
        self.out.write_record(record.iter().map(|c| c.as_bytes())).map_err(std::io::Error::other)
    }

    /// A line about the file itself (it could not be read, or not to its end).
    pub fn failure(&mut self, message: &str) -> std::io::Result<()> {
        let record = ["", "failed", "", &spreadsheet_safe(message), "", ""];
        self.out.write_record(record).map_err(std::io::Error::other)
    }

    /// Flushes, syncs and moves the file into place; returns its path.
    pub fn finish(self) -> std::io::Result<PathBuf> {
        let inner = self.out.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
        let file = inner.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
        file.sync_all()?;
        std::fs::rename(&self.partial, &self.path)?;
        Ok(self.path)
    }
}

/// The results file name for an uploaded file: `leads.csv` → `leads.csv`,
/// `leads.xlsx` → `leads.xlsx.csv` (so two uploads never share one).
pub fn results_name(file_name: &str) -> String {
    if file_name.to_ascii_lowercase().ends_with(".csv") {
        file_name.to_owned()
    } else {
        format!("{file_name}.csv")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Outcome;

    #[test]
    fn formulas_are_neutralised() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(spreadsheet_safe(bad).starts_with('\''), "{bad}");
        }
        assert_eq!(spreadsheet_safe("plain"), "plain");
        assert_eq!(spreadsheet_safe(""), "");
        assert_eq!(results_name("leads.CSV"), "leads.CSV");
        assert_eq!(results_name("leads.xlsx"), "leads.xlsx.csv");
    }

    #[test]
    fn a_results_file_names_columns_and_is_safe() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results/leads.csv");
        let header = vec!["E-mail Address".to_owned(), "Notes".to_owned()];
        let index = ColumnIndex::new(&header, &Aliases::default());
        let mut w = ResultsWriter::create(&path, &header, index).unwrap();
        let result = LeadResult {
            outcome: Outcome::Rejected,
            lead_id: "L1".into(),
            reasons: vec![Problem::new("email", "invalid", "\"x@\" is not an e-mail address")],
            warnings: vec![],
            duplicate_of: None,
        };
        w.row(3, &result, &["x@".into(), "=HYPERLINK(\"http://evil.example\")".into()]).unwrap();
        w.failure("-boom").unwrap();
        assert!(!path.exists(), "not visible before finish");
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "row,outcome,lead_id,reasons,duplicate_of,warnings,E-mail Address,Notes");
        assert!(
            lines[1].starts_with("3,rejected,L1,\"email (column A \"\"E-mail Address\"\"): "),
            "{}",
            lines[1]
        );
        assert!(lines[1].ends_with(",x@,\"'=HYPERLINK(\"\"http://evil.example\"\")\""), "{}", lines[1]);
        assert_eq!(lines[2], ",failed,,'-boom,,");
    }
}
